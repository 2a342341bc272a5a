using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Xunit.Abstractions;

namespace WaveGradSharp.Server.Tests;

/// <summary>The API on a real Kestrel on 127.0.0.1: shapes, refusals, limits, the render gate, cancellation and deadlines.</summary>
[Collection("server")]
public sealed class ApiTests(ServerFixture f, ITestOutputHelper output)
{
    [Fact]
    public async Task SpeechStreamsAWavOfSpeechInOpenAisShape()
    {
        if (!ServerFixture.HasFrontend) { output.WriteLine("skipped: needs festival or espeak-ng (scripts/install-prerequisites.sh --with-speech)"); return; }
        var sw = Stopwatch.StartNew();
        using var r = await ServerFixture.PostStreaming(f.Client, "/v1/audio/speech", ServerFixture.Json(new
        {
            model = "tts-1", input = "Hello from the server.", voice = "alloy", response_format = "wav",
        }));
        double headers = sw.Elapsed.TotalSeconds;
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal("audio/wav", r.Content.Headers.ContentType?.MediaType);
        var (samples, rate) = ServerFixture.DecodeStreamedWav(await r.Content.ReadAsByteArrayAsync());
        output.WriteLine($"headers after {headers:F2} s, {samples.Length / (double)rate:F2} s of audio in {sw.Elapsed.TotalSeconds:F2} s");
        Assert.Equal(22050, rate);
        Assert.InRange(samples.Length / (double)rate, 0.6, 5);
        Assert.True(ServerFixture.Rms(samples) > 0.01, $"speech, not silence (RMS {ServerFixture.Rms(samples):F4})");
    }

    [Fact]
    public async Task PcmIsTheSameAudioWithoutAHeader()
    {
        using var wav = await f.Client.PostAsync("/v1/vocode", ServerFixture.Npy(ServerFixture.WordMel));
        using var pcm = await f.Client.PostAsync("/v1/vocode?response_format=pcm", ServerFixture.Npy(ServerFixture.WordMel));
        Assert.Equal(HttpStatusCode.OK, pcm.StatusCode);
        Assert.Equal("audio/pcm", pcm.Content.Headers.ContentType?.MediaType);
        Assert.Equal("22050", pcm.Headers.GetValues("X-Sample-Rate").Single());
        var a = await wav.Content.ReadAsByteArrayAsync();
        var b = await pcm.Content.ReadAsByteArrayAsync();
        Assert.Equal(a[44..], b);   // same seed, same bits
    }

    [Fact]
    public async Task VocodeRendersTheInputsFramesTimesHop()
    {
        using var r = await f.Client.PostAsync("/v1/vocode?steps=6&seed=3", ServerFixture.Npy(ServerFixture.WordMel));
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var (samples, _) = ServerFixture.DecodeStreamedWav(await r.Content.ReadAsByteArrayAsync());
        Assert.Equal(68 * 256, samples.Length);
        Assert.True(ServerFixture.Rms(samples) > 0.01);
    }

    [Fact]
    public async Task VocodeChecksTheMelAsTheVocodeVerbDoes()
    {
        // Stored frames-first: the band-count check names the fix, in the request's own terms.
        using var r = await f.Client.PostAsync("/v1/vocode", ServerFixture.Npy(ServerFixture.TiledMel(2, framesFirst: true)));
        var e = await ServerFixture.OneLineError(r, 400);
        string message = e.GetProperty("message").GetString()!;
        Assert.Contains("mel bands but 80 are expected", message);
        Assert.Contains("frames_first", message);
        using var ok = await f.Client.PostAsync("/v1/vocode?frames_first=true", ServerFixture.Npy(ServerFixture.TiledMel(1, framesFirst: true)));
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        // A NaN is refused by the same reader.
        var nan = ServerFixture.WordMel;
        BitConverter.GetBytes(float.NaN).CopyTo(nan, nan.Length - 4);
        using var bad = await f.Client.PostAsync("/v1/vocode", ServerFixture.Npy(nan));
        Assert.Contains("NaN", (await ServerFixture.OneLineError(bad, 400)).GetProperty("message").GetString());
    }

    public static TheoryData<string, string, int, string?> BadSpeechRequests => new()
    {
        { "", "application/json", 400, "body" },
        { "{not json", "application/json", 400, "body" },
        { "[1, 2]", "application/json", 400, "body" },
        { """{"input": "Hello."}""", "application/json", 400, "model" },
        { """{"model": "tts-1"}""", "application/json", 400, "input" },
        { """{"model": "tts-1", "input": 42}""", "application/json", 400, "input" },
        { """{"model": "tts-1", "input": "Hello.", "input": "again"}""", "application/json", 400, "body" },
        { """{"model": "tts-1", "input": "Hello.", "response_format": "mp3"}""", "application/json", 400, "response_format" },
        { """{"model": "tts-1", "input": "Hello.", "speed": 9}""", "application/json", 400, "speed" },
        { """{"model": "tts-1", "input": "Hello.", "voice": "nobody\u001b[31m"}""", "application/json", 400, "voice" },
        { """{"model": "tts-1", "input": "Hello.", "steps": "../../etc/passwd"}""", "application/json", 400, "steps" },
        { """{"model": "tts-1", "input": "Hello.", "steps": 100000}""", "application/json", 400, "steps" },
        { """{"model": "tts-1", "input": "Hello.", "sampler": "magic"}""", "application/json", 400, "sampler" },
        { """{"model": "tts-1", "input": "... !!! ???"}""", "application/json", 400, "input" },
    };

    [Theory]
    [MemberData(nameof(BadSpeechRequests))]
    public async Task EveryBadSpeechRequestIsOneLineOfOpenAiError(string body, string type, int status, string? param)
    {
        using var r = await f.Client.PostAsync("/v1/audio/speech", new StringContent(body, Encoding.UTF8, type));
        var e = await ServerFixture.OneLineError(r, status);
        Assert.Equal("invalid_request_error", e.GetProperty("type").GetString());
        Assert.Equal(param, e.GetProperty("param").GetString());
    }

    [Fact]
    public async Task LimitsAreRefusedBeforeAnyRender()
    {
        using var longText = await f.Client.PostAsync("/v1/audio/speech", ServerFixture.Json(new { model = "tts-1", input = new string('a', 401) }));
        Assert.Equal("too_large", (await ServerFixture.OneLineError(longText, 400)).GetProperty("code").GetString());
        using var big = await f.Client.PostAsync("/v1/vocode", ServerFixture.Npy(new byte[300 << 10]));
        await ServerFixture.OneLineError(big, 413);
        using var frames = await f.Client.PostAsync("/v1/vocode", ServerFixture.Npy(ServerFixture.TiledMel(9)));   // 612 frames > 600
        Assert.Contains("limit is 600", (await ServerFixture.OneLineError(frames, 400)).GetProperty("message").GetString());
        using var unknown = await f.Client.GetAsync("/v1/nothing");
        await ServerFixture.OneLineError(unknown, 404);
        using var method = await f.Client.GetAsync("/v1/audio/speech");
        await ServerFixture.OneLineError(method, 405);
    }

    [Fact]
    public async Task ABodyOverTheLimitIsAnswered413AndTheClientGoesOn()
    {
        // The server reads an oversized body to its end before answering, so a client still sending sees the 413, not a reset,
        // and its next request (on a fresh connection: the 413 closes this one) is answered.
        for (int i = 0; i < 5; i++)
        {
            using var big = await f.Client.PostAsync("/v1/vocode", ServerFixture.Npy(new byte[(300 << 10) + i * 65536]));
            Assert.Equal("too_large", (await ServerFixture.OneLineError(big, 413)).GetProperty("code").GetString());
            Assert.True(big.Headers.ConnectionClose);
            using var next = await f.Client.GetAsync("/v1/voices");
            Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        }
    }

    [Fact]
    public async Task AFullQueueAnswers429WithRetryAfter()
    {
        var (server, client) = await f.Start(ServerFixture.Small with { MaxQueue = 0 });
        await using var _ = server;
        using var __ = client;
        var slow = client.PostAsync("/v1/vocode?steps=50&start=noise", ServerFixture.Npy(ServerFixture.TiledMel(3)));
        await ServerFixture.WaitForRunning(client, 1);
        using var refused = await client.PostAsync("/v1/vocode", ServerFixture.Npy(ServerFixture.WordMel));
        var e = await ServerFixture.OneLineError(refused, 429);
        Assert.Equal("rate_limit_exceeded", e.GetProperty("code").GetString());
        Assert.True(int.Parse(refused.Headers.GetValues("Retry-After").Single()) >= 1);
        using var done = await slow;
        Assert.Equal(HttpStatusCode.OK, done.StatusCode);
        using var after = await client.PostAsync("/v1/vocode", ServerFixture.Npy(ServerFixture.WordMel));
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }

    [Fact]
    public async Task AClientThatHangsUpCancelsItsRenderAtTheNextChunk()
    {
        var (server, client) = await f.Start(ServerFixture.Small);
        await using var _ = server;
        using var __ = client;
        // 8 words of mel from noise at 50 steps: far longer than the test waits.
        using (var r = await ServerFixture.PostStreaming(client, "/v1/vocode?steps=50&start=noise", ServerFixture.Npy(ServerFixture.TiledMel(8))))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            var stream = await r.Content.ReadAsStreamAsync();
            Assert.True(await stream.ReadAsync(new byte[4096]) > 0);
        }   // disposed: the connection is closed mid-stream
        var sw = Stopwatch.StartNew();
        await ServerFixture.WaitForRunning(client, 0);
        output.WriteLine($"render stopped {sw.Elapsed.TotalSeconds:F2} s after the client left");
        string metrics = await client.GetStringAsync("/metrics");
        double sent = Metric(metrics, "wavegrad_audio_seconds_total{route=\"/v1/vocode\"}");
        Assert.InRange(sent, 0.01, 8 * 68 * 256 / 22050.0 - 1);   // it did not render to the end
    }

    [Fact]
    public async Task ARenderPastItsDeadlineIsA504()
    {
        var (server, client) = await f.Start(ServerFixture.Small with { Deadline = TimeSpan.FromSeconds(0.5) });
        await using var _ = server;
        using var __ = client;
        using var r = await client.PostAsync("/v1/vocode?sampler=ddim&steps=200&start=noise", ServerFixture.Npy(ServerFixture.TiledMel(4)));
        Assert.Equal("deadline_exceeded", (await ServerFixture.OneLineError(r, 504)).GetProperty("code").GetString());
        await ServerFixture.WaitForRunning(client, 0);
    }

    [Fact]
    public async Task ASlowUploadIsCutWithoutHoldingARenderSlot()
    {
        using var socket = new TcpClient();
        var uri = new Uri(f.Server.Addresses[0]);
        await socket.ConnectAsync(uri.Host, uri.Port);
        var s = socket.GetStream();
        await s.WriteAsync(Encoding.ASCII.GetBytes($"POST /v1/vocode HTTP/1.1\r\nHost: {uri.Authority}\r\nContent-Length: 100000\r\n\r\n"));
        var sw = Stopwatch.StartNew();
        var reply = new MemoryStream();
        var buffer = new byte[4096];
        // 16 bytes a second: far under the 1 kB/s the server asks for after 5 s of grace.
        var reading = Task.Run(async () => { int n; while ((n = await s.ReadAsync(buffer)) > 0) reply.Write(buffer, 0, n); });
        try
        {
            while (!reading.IsCompleted && sw.Elapsed < TimeSpan.FromSeconds(20))
            {
                await s.WriteAsync(new byte[16]);
                var h = JsonDocument.Parse(await f.Client.GetStringAsync("/healthz")).RootElement;
                Assert.Equal(0, h.GetProperty("running").GetInt32());
                await Task.Delay(1000);
            }
        }
        catch (IOException) { }   // the server closed the connection
        await Task.WhenAny(reading, Task.Delay(5000));
        string text = Encoding.ASCII.GetString(reply.ToArray());
        output.WriteLine($"cut after {sw.Elapsed.TotalSeconds:F1} s: {text.Split('\n')[0]}");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), "the slow upload was cut");
        Assert.StartsWith("HTTP/1.1 408", text);
    }

    [Fact]
    public async Task AnApiKeyIsRequiredOnTheApiButNotOnTheHealthCheck()
    {
        var (server, client) = await f.Start(ServerFixture.Small with { ApiKey = "s3cret" });
        await using var _ = server;
        using var __ = client;
        using var none = await client.GetAsync("/v1/voices");
        Assert.Equal("invalid_api_key", (await ServerFixture.OneLineError(none, 401)).GetProperty("code").GetString());
        using var wrong = new HttpRequestMessage(HttpMethod.Get, "/v1/voices") { Headers = { { "Authorization", "Bearer s3creT" } } };
        await ServerFixture.OneLineError(await client.SendAsync(wrong), 401);
        using var right = new HttpRequestMessage(HttpMethod.Get, "/v1/voices") { Headers = { { "Authorization", "Bearer s3cret" } } };
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(right)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz")).StatusCode);
        await ServerFixture.OneLineError(await client.GetAsync("/metrics"), 401);
    }

    [Fact]
    public async Task VoicesHealthMetricsAndThePageAnswer()
    {
        var voices = JsonDocument.Parse(await f.Client.GetStringAsync("/v1/voices")).RootElement;
        Assert.Equal("slt-22k", voices.GetProperty("voices")[0].GetProperty("id").GetString());
        Assert.Equal("ok", JsonDocument.Parse(await f.Client.GetStringAsync("/healthz")).RootElement.GetProperty("status").GetString());
        await f.Client.PostAsync("/v1/audio/speech", ServerFixture.Json(new { input = "no model" }));
        string metrics = await f.Client.GetStringAsync("/metrics");
        foreach (var name in new[] { "wavegrad_requests_total", "wavegrad_errors_total", "wavegrad_render_queue_depth", "wavegrad_audio_seconds_total",
                     "process_working_set_bytes", "process_num_threads" })
            Assert.Contains(name, metrics);
        Assert.True(Metric(metrics, "wavegrad_requests_total{route=\"/v1/audio/speech\",status=\"400\"}") >= 1);
        string page = await f.Client.GetStringAsync("/");
        Assert.Contains("Watch it denoise", page);
        Assert.Contains("addEventListener", await f.Client.GetStringAsync("/page/app.js"));
        Assert.Equal(HttpStatusCode.NotFound, (await f.Client.GetAsync("/page/..%2Fsecret")).StatusCode);
    }

    [Fact]
    public async Task DenoiseReturnsTheEstimateAfterEveryStep()
    {
        if (!ServerFixture.HasFrontend) { output.WriteLine("skipped: needs festival or espeak-ng"); return; }
        using var r = await f.Client.PostAsync("/v1/denoise", ServerFixture.Json(new { input = "Noise becomes speech.", steps = 6 }));
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var d = JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement;
        var steps = d.GetProperty("steps").EnumerateArray().ToList();
        Assert.Equal(6, steps.Count);   // from noise: every level of WG-6
        var stds = steps.Select(s => s.GetProperty("noise_std").GetDouble()).ToList();
        Assert.Equal(stds.OrderDescending(), stds);
        int frames = d.GetProperty("frames").GetInt32();
        Assert.Equal(80 * frames, Convert.FromBase64String(steps[0].GetProperty("estimate_mel").GetString()!).Length);
        Assert.Equal(frames * 256 * 2, Convert.FromBase64String(steps[^1].GetProperty("estimate_pcm").GetString()!).Length);
    }

    [Fact]
    public async Task TheGateAdmitsInFlightPlusQueueAndNoMore()
    {
        var gate = new RenderGate(1, 1);
        var first = await gate.TryEnterAsync(default);
        var second = gate.TryEnterAsync(default);   // waits in the queue
        Assert.False(second.IsCompleted);
        Assert.Equal(1, gate.Queued);
        Assert.Null(await gate.TryEnterAsync(default));
        using var cts = new CancellationTokenSource();
        first!.Dispose();
        using var s = await second;
        Assert.Equal(0, gate.Queued);
        Assert.Equal(1, gate.Running);
        var third = gate.TryEnterAsync(cts.Token);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => third);
        Assert.Equal(0, gate.Queued);
    }

    static double Metric(string text, string series) =>
        text.Split('\n').Where(l => l.StartsWith(series + " ", StringComparison.Ordinal))
            .Select(l => double.Parse(l[(series.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture)).DefaultIfEmpty(0).Single();
}
