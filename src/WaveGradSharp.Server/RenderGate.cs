namespace WaveGradSharp.Server;

/// <summary>
/// Admission for renders: at most <c>inFlight</c> run at once and <c>queue</c> more wait; anyone past that is turned away at
/// once (the caller answers 429) instead of slowing everyone. Waiting ends with the request's cancellation (a client gone,
/// a deadline passed).
/// </summary>
public sealed class RenderGate(int inFlight, int queue)
{
    readonly SemaphoreSlim slots = new(Math.Max(1, inFlight), Math.Max(1, inFlight));
    readonly int capacity = Math.Max(1, inFlight) + Math.Max(0, queue);
    int admitted, running;

    /// <summary>Renders waiting for a slot.</summary>
    public int Queued => Math.Max(0, Volatile.Read(ref admitted) - Volatile.Read(ref running));
    /// <summary>Renders running.</summary>
    public int Running => Volatile.Read(ref running);

    /// <summary>A slot (dispose it when the render has stopped), or null when the queue is full.</summary>
    public async Task<IDisposable?> TryEnterAsync(CancellationToken ct)
    {
        if (Interlocked.Increment(ref admitted) > capacity)
        {
            Interlocked.Decrement(ref admitted);
            return null;
        }
        try { await slots.WaitAsync(ct); }
        catch { Interlocked.Decrement(ref admitted); throw; }
        Interlocked.Increment(ref running);
        return new Slot(this);
    }

    sealed class Slot(RenderGate gate) : IDisposable
    {
        int done;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref done, 1) == 1) return;
            Interlocked.Decrement(ref gate.running);
            Interlocked.Decrement(ref gate.admitted);
            gate.slots.Release();
        }
    }
}

/// <summary>
/// The threads renders run on: a fixed set, started once. A thread per render would give each its own native heap arena
/// (glibc) and libtorch thread state, and the process's memory grew by a gigabyte over a few dozen renders; on the same few
/// threads it stays flat. The <see cref="RenderGate"/> admits no more renders than there are threads, so work never waits here.
/// </summary>
public sealed class RenderThreads : IDisposable
{
    readonly System.Collections.Concurrent.BlockingCollection<Action> work = new();

    /// <summary>Starts <paramref name="count"/> background threads.</summary>
    public RenderThreads(int count)
    {
        for (int i = 0; i < Math.Max(1, count); i++)
            new Thread(() => { foreach (var a in work.GetConsumingEnumerable()) a(); }) { IsBackground = true, Name = $"wavegrad-render-{i}" }.Start();
    }

    /// <summary>Runs <paramref name="render"/> on one of the threads.</summary>
    public Task<T> Run<T>(Func<T> render)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        work.Add(() =>
        {
            try { done.SetResult(render()); }
            catch (Exception e) { done.SetException(e); }
        });
        return done.Task;
    }

    /// <summary>Lets the threads finish what they hold and end.</summary>
    public void Dispose() => work.CompleteAdding();
}
