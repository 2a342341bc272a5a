using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using OpenQA.Selenium.Support.UI;
using Xunit.Abstractions;

namespace WaveGradSharp.Server.Tests;

/// <summary>
/// Real clients on 127.0.0.1: the official <c>openai</c> npm package, Debian's Chromium driven through chromium-driver, and the
/// installed command under SIGTERM. A client that is not installed here skips its test with the command that installs it;
/// <c>.ci/run</c> installs them all.
/// </summary>
[Collection("server")]
public sealed partial class ClientTests(ServerFixture f, ITestOutputHelper output)
{
    static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "WaveGradSharp.sln"))) return d.FullName;
        throw new InvalidOperationException("not inside the repository");
    }

    static string? OnPath(string exe) => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
        .Select(d => Path.Combine(d, exe)).FirstOrDefault(File.Exists);

    static (int Code, string Stdout, string Stderr) Run(string file, string workingDirectory, TimeSpan limit, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(limit)) { p.Kill(true); throw new TimeoutException($"{file} did not finish in {limit.TotalSeconds} s"); }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void TheOfficialOpenAiClientGetsSpeech()
    {
        if (!ServerFixture.HasFrontend) { output.WriteLine("skipped: needs festival or espeak-ng"); return; }
        string? node = OnPath("node"), npm = OnPath("npm");
        if (node is null || npm is null) { output.WriteLine("skipped: needs node and npm (apt-get install -y nodejs npm; .ci/run installs them)"); return; }
        string dir = Path.Combine(RepoRoot(), "tests", "WaveGradSharp.Server.Tests", "clients", "openai");
        if (!Directory.Exists(Path.Combine(dir, "node_modules", "openai")))
        {
            var install = Run(npm, dir, TimeSpan.FromMinutes(3), "ci", "--no-audit", "--no-fund");
            if (install.Code != 0) { output.WriteLine($"skipped: 'npm ci' in {dir} failed (no registry?): {install.Stderr.Trim()}"); return; }
        }
        string wav = Path.Combine(Path.GetTempPath(), $"wavegrad-openai-{Guid.NewGuid():N}.wav");
        try
        {
            var (code, stdout, stderr) = Run(node, dir, TimeSpan.FromMinutes(3), "speech.mjs", f.Server.Addresses[0] + "/v1", wav);
            output.WriteLine(stdout + stderr);
            Assert.True(code == 0, stderr);
            var result = JsonDocument.Parse(stdout.Trim().Split('\n')[^1]).RootElement;
            Assert.Equal(200, result.GetProperty("status").GetInt32());
            Assert.Equal("audio/wav", result.GetProperty("contentType").GetString());
            // The SDK read the server's error as OpenAI's: status, type, param and code.
            var refused = result.GetProperty("refused");
            Assert.Equal(400, refused.GetProperty("status").GetInt32());
            Assert.Equal("invalid_request_error", refused.GetProperty("type").GetString());
            Assert.Equal("response_format", refused.GetProperty("param").GetString());
            var (samples, rate) = ServerFixture.DecodeStreamedWav(File.ReadAllBytes(wav));
            output.WriteLine($"{samples.Length / (double)rate:F2} s, RMS {ServerFixture.Rms(samples):F3}");
            Assert.InRange(samples.Length / (double)rate, 1, 6);
            Assert.True(ServerFixture.Rms(samples) > 0.01, "speech, not silence");
        }
        finally { File.Delete(wav); }
    }

    [Fact]
    public void ThePagePlaysSpeechInChromium()
    {
        if (!ServerFixture.HasFrontend) { output.WriteLine("skipped: needs festival or espeak-ng"); return; }
        string? chromium = OnPath("chromium") ?? OnPath("chromium-browser"), driver = OnPath("chromedriver");
        if (chromium is null || driver is null)
        {
            output.WriteLine("skipped: needs chromium and chromedriver (apt-get install -y chromium chromium-driver; .ci/run installs them)");
            return;
        }
        var service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(driver)!, Path.GetFileName(driver));
        service.HideCommandPromptWindow = true;
        service.SuppressInitialDiagnosticInformation = true;
        var options = new ChromeOptions { BinaryLocation = chromium };
        options.AddArguments("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,860",
            "--autoplay-policy=no-user-gesture-required", "--disable-gpu", "--no-first-run");
        options.SetLoggingPreference(LogType.Browser, LogLevel.All);
        using var browser = new ChromeDriver(service, options, TimeSpan.FromSeconds(60));
        browser.Navigate().GoToUrl(f.Server.Addresses[0] + "/");
        var wait = new WebDriverWait(browser, TimeSpan.FromSeconds(90)) { PollingInterval = TimeSpan.FromMilliseconds(100) };
        wait.Until(b => b.FindElements(By.CssSelector("#voice option")).Count > 0);
        var text = browser.FindElement(By.Id("text"));
        text.Clear();
        text.SendKeys("Hello from the page. It starts to play while the rest is still rendering.");
        // Keyboard only: tab to the Play button and press Enter.
        browser.FindElement(By.Id("steps")).SendKeys(Keys.Tab);
        Assert.Equal("play", browser.SwitchTo().ActiveElement().GetAttribute("id"));
        browser.SwitchTo().ActiveElement().SendKeys(Keys.Enter);
        var js = (IJavaScriptExecutor)browser;
        var sw = Stopwatch.StartNew();
        wait.Until(_ => Convert.ToDouble(js.ExecuteScript("return window.wavegrad.playedSeconds")) >= 1.0);
        output.WriteLine($"1 s played {sw.Elapsed.TotalSeconds:F2} s after Enter; status: {browser.FindElement(By.Id("speak-status")).Text}");
        wait.Until(b => b.FindElement(By.Id("speak-status")).Text.StartsWith("Done", StringComparison.Ordinal));
        Thread.Sleep(500);   // let the spectrogram fill in for the screenshot
        string shot = Path.Combine(RepoRoot(), "samples", "outputs", "serve-page.png");
        ((ITakesScreenshot)browser).GetScreenshot().SaveAsFile(shot);
        Assert.True(browser.FindElement(By.Id("speak-error")).GetAttribute("hidden") is not null, "no error shown");
        var errors = browser.Manage().Logs.GetLog(LogType.Browser).Where(e => e.Level >= LogLevel.Warning).ToList();
        foreach (var e in errors) output.WriteLine($"console {e.Level}: {e.Message}");
        Assert.Empty(errors);
    }

    [Fact]
    public async Task SigtermDrainsTheRequestInFlightThenExitsZero()
    {
        await using var server = await ServerProcess.Start("--drain-seconds", "60");
        var client = server.Client;
        var request = client.PostAsync("/v1/vocode?steps=50&start=noise", ServerFixture.Npy(ServerFixture.TiledMel(3)));
        await ServerFixture.WaitForRunning(client, 1);
        Assert.Equal(0, Run("kill", Path.GetTempPath(), TimeSpan.FromSeconds(10), "-TERM", server.Process.Id.ToString()).Code);
        using var r = await request;
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var (samples, _) = ServerFixture.DecodeStreamedWav(await r.Content.ReadAsByteArrayAsync());
        Assert.Equal(3 * 68 * 256, samples.Length);   // finished, not cut
        Assert.True(server.Process.WaitForExit(TimeSpan.FromSeconds(30)), "the server exited after draining");
        output.WriteLine(await server.Log);
        Assert.Equal(0, server.Process.ExitCode);
    }
}

/// <summary>`wavegrad serve` as a separate process on a free loopback port, as a user runs it.</summary>
public sealed partial class ServerProcess : IAsyncDisposable
{
    public required Process Process { get; init; }
    public required HttpClient Client { get; init; }
    /// <summary>Its standard error, once it has exited.</summary>
    public required Task<string> Log { get; init; }

    public static async Task<ServerProcess> Start(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Path.GetTempPath() };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "wavegrad.dll"), "serve", "--urls", "http://127.0.0.1:0" }.Concat(args))
            psi.ArgumentList.Add(a);
        var process = Process.Start(psi)!;
        var log = process.StandardError.ReadToEndAsync();
        try
        {
            string? line, url = null;
            while ((line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(120))) is not null)
                if (ListeningOn().Match(line) is { Success: true } m) { url = m.Groups[1].Value; break; }
            if (url is null) throw new InvalidOperationException($"wavegrad serve did not say where it listens: {(process.HasExited ? await log : "")}");
            _ = process.StandardOutput.ReadToEndAsync();
            return new ServerProcess
            {
                Process = process, Log = log, Client = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(120) },
            };
        }
        catch
        {
            process.Kill(true);
            process.Dispose();
            throw;
        }
    }

    public ValueTask DisposeAsync()
    {
        Client.Dispose();
        if (!Process.HasExited) Process.Kill(true);
        Process.Dispose();
        return ValueTask.CompletedTask;
    }

    [GeneratedRegex(@"^wavegrad serve: (http://[^ ,]+)")]
    private static partial Regex ListeningOn();
}
