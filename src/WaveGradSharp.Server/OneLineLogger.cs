using Microsoft.Extensions.Logging;
using WaveGradSharp.Core;

namespace WaveGradSharp.Server;

/// <summary>
/// The server's log: one line per event on standard error, "time level category: message", control characters escaped
/// (a request path or header may carry any byte) and an exception reduced to its type and first line: no stack traces.
/// </summary>
sealed class OneLineLoggerProvider(TextWriter output) : ILoggerProvider
{
    readonly Lock gate = new();

    public ILogger CreateLogger(string categoryName) => new OneLineLogger(this, categoryName.Split('.')[^1]);

    public void Dispose() { }

    void Write(string line)
    {
        lock (gate) output.WriteLine(line);
    }

    sealed class OneLineLogger(OneLineLoggerProvider provider, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            string message = formatter(state, exception);
            if (exception is not null) message += $" ({exception.GetType().Name}: {Text.FirstLine(exception.Message)})";
            string level = logLevel switch
            {
                LogLevel.Trace => "trace", LogLevel.Debug => "debug", LogLevel.Information => "info", LogLevel.Warning => "warn",
                LogLevel.Error => "error", _ => "crit",
            };
            provider.Write($"{DateTime.UtcNow:HH:mm:ss.fff} {level} {category}: {Text.Escape(message, 2000)}");
        }
    }
}
