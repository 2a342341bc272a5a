using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace WaveGradSharp.Server;

/// <summary>
/// A request the server refuses, with OpenAI's error shape: <c>{"error":{"message","type","param","code"}}</c> on one line.
/// The message is escaped (no control characters) and never carries a stack trace.
/// </summary>
public sealed class ApiError(int status, string message, string type = ApiError.InvalidRequest, string? param = null, string? code = null)
    : Exception(message)
{
    /// <summary>OpenAI's type for a request the client must change.</summary>
    public const string InvalidRequest = "invalid_request_error";

    /// <summary>The HTTP status.</summary>
    public int Status { get; } = status;
    /// <summary>invalid_request_error, authentication_error, rate_limit_error, timeout or server_error.</summary>
    public string Type { get; } = type;
    /// <summary>The request field at fault, when one is.</summary>
    public string? Param { get; } = param;
    /// <summary>A stable machine-readable code (invalid_value, missing_field, too_large, …).</summary>
    public string? Code { get; } = code;
    /// <summary>Seconds a 429 or 503 asks the client to wait.</summary>
    public int? RetryAfterSeconds { get; init; }

    /// <summary>A bad field: 400 naming it.</summary>
    public static ApiError Field(string param, string message, string code = "invalid_value") => new(400, message, InvalidRequest, param, code);

    /// <summary>Compact JSON that leaves quotes and apostrophes readable (it is never embedded in HTML); control characters stay escaped.</summary>
    static readonly JsonSerializerOptions OneLine = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Writes the error as the response (status, Retry-After, one line of JSON).</summary>
    public async Task WriteAsync(HttpContext ctx)
    {
        ctx.Response.StatusCode = Status;
        if (RetryAfterSeconds is int s) ctx.Response.Headers.RetryAfter = s.ToString(System.Globalization.CultureInfo.InvariantCulture);
        ctx.Response.ContentType = "application/json";
        var body = new { error = new { message = Core.Text.Escape(Message, 1000), type = Type, param = Param, code = Code } };
        var bytes = System.Text.Encoding.UTF8.GetBytes(JsonSerializer.Serialize(body, OneLine) + "\n");
        ctx.Response.ContentLength = bytes.Length;   // not chunked: one line, however the client reads it
        await ctx.Response.Body.WriteAsync(bytes, ctx.RequestAborted);
    }
}
