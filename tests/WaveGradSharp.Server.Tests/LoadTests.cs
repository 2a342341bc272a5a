using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Xunit.Abstractions;

namespace WaveGradSharp.Server.Tests;

/// <summary>
/// The load test: concurrent clients against `wavegrad serve` (a separate process, default limits) mixing speech, vocode,
/// malformed and oversized bodies, slow uploads and clients that drop mid-stream. The suite runs a short variant (4 clients,
/// 15 s); <c>scripts/load-test.sh</c> runs the 16 clients for 60 s through WAVEGRAD_LOAD_CLIENTS / WAVEGRAD_LOAD_SECONDS
/// and writes the figures to WAVEGRAD_LOAD_REPORT.
/// </summary>
[Collection("server")]
public sealed class LoadTests(ITestOutputHelper output)
{
    static readonly string[] Sentences =
    [
        "Hello there.", "The sun shone on the sea.", "It was a fine day for a walk.", "Numbers like seven and twelve are easy to say.",
    ];

    enum Kind { Speech, Vocode, Malformed, Oversized, SlowUpload, Drop }

    sealed record Outcome(Kind Kind, int Status, double FirstByteSeconds, double AudioSeconds, bool OneLineJson, string Note = "");

    [Fact]
    public async Task MixedLoadHoldsWithinItsLimits()
    {
        int clients = int.TryParse(Environment.GetEnvironmentVariable("WAVEGRAD_LOAD_CLIENTS"), out var c) ? c : 4;
        double seconds = double.TryParse(Environment.GetEnvironmentVariable("WAVEGRAD_LOAD_SECONDS"), System.Globalization.CultureInfo.InvariantCulture,
            out var s) ? s : 15;
        bool hasFrontend = ServerFixture.HasFrontend;
        await using var server = await ServerProcess.Start();
        var http = server.Client;
        // Warm-up: every route once, so that the baseline is a server that has done its first renders.
        for (int i = 0; i < 4; i++)
        {
            (await http.PostAsync("/v1/vocode", ServerFixture.Npy(ServerFixture.WordMel))).EnsureSuccessStatusCode();
            var speech = ServerFixture.Json(new { model = "tts-1", input = Sentences[i % Sentences.Length] });
            if (hasFrontend) (await http.PostAsync("/v1/audio/speech", speech)).EnsureSuccessStatusCode();
        }
        await Task.Delay(2000);
        var (memory0, threads0) = await ProcessFigures(http);

        var outcomes = new System.Collections.Concurrent.ConcurrentBag<Outcome>();
        var wall = Stopwatch.StartNew();
        var until = DateTime.UtcNow.AddSeconds(seconds);
        byte[] word = ServerFixture.WordMel, oversized = new byte[3 << 20];
        var kinds = hasFrontend ? Enum.GetValues<Kind>() : Enum.GetValues<Kind>().Where(k => k != Kind.Speech).ToArray();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(id => Task.Run(async () =>
        {
            var rng = new Random(id);
            using var client = new HttpClient { BaseAddress = http.BaseAddress, Timeout = TimeSpan.FromSeconds(150) };
            for (int n = 0; DateTime.UtcNow < until; n++)
            {
                var kind = kinds[(id + n) % kinds.Length];
                try { outcomes.Add(await Request(client, kind, rng, word, oversized)); }
                catch (Exception e) { outcomes.Add(new Outcome(kind, -1, 0, 0, false, $"{e.GetType().Name}: {e.Message}")); }
            }
        })));
        double elapsed = wall.Elapsed.TotalSeconds;

        // Quiet again: memory within 200 MB of the warm baseline, threads back to it (the pool retires idle threads slowly).
        long memory1 = 0; int threads1 = 0;
        for (var settle = Stopwatch.StartNew(); settle.Elapsed < TimeSpan.FromSeconds(40); await Task.Delay(2000))
        {
            (memory1, threads1) = await ProcessFigures(http);
            if (threads1 <= threads0 + 2) break;
        }
        Assert.False(server.Process.HasExited, "the server is still up");

        var all = outcomes.ToList();
        var rendered = all.Where(o => o.Kind is Kind.Speech or Kind.Vocode && o.Status == 200).ToList();
        var ttfb = rendered.Select(o => o.FirstByteSeconds).Order().ToList();
        double P(double q) => ttfb.Count == 0 ? double.NaN : ttfb[Math.Min(ttfb.Count - 1, (int)Math.Ceiling(q * ttfb.Count) - 1)];
        var report = new
        {
            clients, seconds = Math.Round(elapsed, 1), requests = all.Count,
            by_kind = all.GroupBy(o => o.Kind.ToString())
                .ToDictionary(g => g.Key, g => g.GroupBy(o => o.Status).ToDictionary(h => h.Key.ToString(), h => h.Count())),
            ttfb_p50_s = Math.Round(P(0.5), 3), ttfb_p99_s = Math.Round(P(0.99), 3),
            audio_seconds = Math.Round(rendered.Sum(o => o.AudioSeconds), 1),
            audio_seconds_per_wall_second = Math.Round(rendered.Sum(o => o.AudioSeconds) / elapsed, 3),
            memory_mb_warm = memory0 >> 20, memory_mb_after = memory1 >> 20, threads_warm = threads0, threads_after = threads1,
        };
        string json = JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true });
        output.WriteLine(json);
        foreach (var o in all.Where(o => o.Note != "").Take(10)) output.WriteLine($"{o.Kind} {o.Status}: {o.Note}");
        if (Environment.GetEnvironmentVariable("WAVEGRAD_LOAD_REPORT") is { Length: > 0 } path) File.WriteAllText(path, json + "\n");

        Assert.DoesNotContain(all, o => o.Status >= 500 || o.Status < 0);
        Assert.All(all.Where(o => o.Kind is Kind.Speech or Kind.Vocode), o => Assert.True(o.Status is 200 or 429, $"{o.Kind} {o.Status} {o.Note}"));
        Assert.All(all.Where(o => o.Kind is Kind.Malformed or Kind.Oversized or Kind.SlowUpload), o =>
        {
            Assert.InRange(o.Status, 400, 499);
            Assert.True(o.OneLineJson, $"{o.Kind}: {o.Note}");
        });
        Assert.NotEmpty(rendered);
        Assert.True(memory1 - memory0 < 200L << 20, $"memory grew from {memory0 >> 20} to {memory1 >> 20} MB");
        Assert.True(threads1 <= threads0 + 2, $"threads {threads0} → {threads1}");
    }

    static async Task<Outcome> Request(HttpClient client, Kind kind, Random rng, byte[] word, byte[] oversized)
    {
        switch (kind)
        {
            case Kind.Speech or Kind.Vocode or Kind.Drop:
            {
                bool speech = kind == Kind.Speech || (kind == Kind.Drop && rng.Next(2) == 0 && ServerFixture.HasFrontend);
                var sw = Stopwatch.StartNew();
                using var r = await ServerFixture.PostStreaming(client, speech ? "/v1/audio/speech" : "/v1/vocode", speech
                    ? ServerFixture.Json(new { model = "tts-1", input = Sentences[rng.Next(Sentences.Length)], response_format = "pcm" })
                    : ServerFixture.Npy(word));
                if (r.StatusCode != HttpStatusCode.OK)
                {
                    string body = await r.Content.ReadAsStringAsync();
                    return new Outcome(kind, (int)r.StatusCode, 0, 0, IsOneLineError(body), body.Length > 200 ? body[..200] : body);
                }
                var stream = await r.Content.ReadAsStreamAsync();
                var buffer = new byte[65536];
                long bytes = await stream.ReadAsync(buffer);
                double first = sw.Elapsed.TotalSeconds;
                if (kind == Kind.Drop) return new Outcome(kind, 200, first, 0, false);   // hang up after the first chunk
                int n;
                while ((n = await stream.ReadAsync(buffer)) > 0) bytes += n;
                return new Outcome(kind, 200, first, bytes / 2 / 22050.0, false);
            }
            case Kind.Malformed:
            {
                string[] bodies = ["{", "[]", """{"model":"tts-1","input":7}""", "\u0000\u001b[2J", """{"model":"tts-1","input":"x","steps":"/etc/passwd"}"""];
                using var r = await client.PostAsync(rng.Next(2) == 0 ? "/v1/audio/speech" : "/v1/vocode",
                    new StringContent(bodies[rng.Next(bodies.Length)], Encoding.UTF8, "application/json"));
                string body = await r.Content.ReadAsStringAsync();
                return new Outcome(kind, (int)r.StatusCode, 0, 0, IsOneLineError(body), body.Length > 200 ? body[..200] : body);
            }
            case Kind.Oversized:
            {
                // As a well-behaved client sends a large body: it asks first (Expect: 100-continue), and the server refuses before it is sent.
                using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/vocode") { Content = ServerFixture.Npy(oversized) };
                request.Headers.ExpectContinue = true;
                using var r = await client.SendAsync(request);
                string body = await r.Content.ReadAsStringAsync();
                return new Outcome(kind, (int)r.StatusCode, 0, 0, IsOneLineError(body), body.Length > 200 ? body[..200] : body);
            }
            default:
            {
                // A slow upload: the headers, then 8 bytes a second of a 50 kB body.
                using var socket = new TcpClient();
                await socket.ConnectAsync(client.BaseAddress!.Host, client.BaseAddress.Port);
                var s = socket.GetStream();
                string head = $"POST /v1/vocode HTTP/1.1\r\nHost: {client.BaseAddress.Authority}\r\nContent-Length: 50000\r\n\r\n";
                await s.WriteAsync(Encoding.ASCII.GetBytes(head));
                var reply = new MemoryStream();
                var reading = Task.Run(async () =>
                {
                    var b = new byte[4096];
                    int k;
                    try { while ((k = await s.ReadAsync(b)) > 0) reply.Write(b, 0, k); } catch (IOException) { }
                });
                for (int i = 0; i < 20 && !reading.IsCompleted; i++)
                {
                    try { await s.WriteAsync(new byte[8]); } catch (IOException) { break; }
                    await Task.WhenAny(reading, Task.Delay(1000));
                }
                await Task.WhenAny(reading, Task.Delay(5000));
                string text = Encoding.UTF8.GetString(reply.ToArray());
                int status = text.StartsWith("HTTP/1.1 ", StringComparison.Ordinal) ? int.Parse(text[9..12]) : -1;
                string body = text.Contains("\r\n\r\n") ? text[(text.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..] : "";
                return new Outcome(kind, status, 0, 0, IsOneLineError(body), status < 0 ? "no answer" : "");
            }
        }
    }

    static bool IsOneLineError(string body)
    {
        if (body.TrimEnd('\n').Contains('\n')) return false;
        try { return JsonDocument.Parse(body).RootElement.GetProperty("error").TryGetProperty("message", out _); }
        catch (JsonException) { return false; }
    }

    /// <summary>The server's resident memory and thread count, from its /metrics (prometheus-net's process collectors).</summary>
    static async Task<(long Memory, int Threads)> ProcessFigures(HttpClient http)
    {
        string text = await http.GetStringAsync("/metrics");
        double Value(string name) => double.Parse(text.Split('\n').First(l => l.StartsWith(name + " ", StringComparison.Ordinal))[(name.Length + 1)..],
            System.Globalization.CultureInfo.InvariantCulture);
        return ((long)Value("process_working_set_bytes"), (int)Value("process_num_threads"));
    }
}
