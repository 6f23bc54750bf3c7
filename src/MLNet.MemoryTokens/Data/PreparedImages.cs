using System.Collections.Concurrent;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Kernels;

namespace MLNet.MemoryTokens.Data;

/// <summary>A dataset decoded once and resized to the model's input, kept as 8-bit RGB [N, S, S, 3] with labels;
/// batches are normalised into [B, 3, S, S] on demand (a quarter of the memory of a float cache).</summary>
/// <remarks>Prepared either all at once (<see cref="From"/>) or while it is used (<see cref="Stream"/>): background threads
/// decode in index order, a batch asked for is decoded first (the asking thread helps), so decoding overlaps the compute
/// that reads the images. Either way every bad image is named in one error, thrown by whatever first needs a result that
/// depends on it (its batch, <see cref="Complete"/>, <see cref="Fingerprint"/>, <see cref="Warnings"/>).</remarks>
public sealed class PreparedImages
{
    public int Count => Labels.Length;
    public int Size { get; }
    public int[] Labels { get; }
    public IReadOnlyList<string> ClassNames { get; }
    readonly byte[] _pixels;               // [rows of the prepared set, S, S, 3], shared by subsets
    readonly int[]? _rows;                 // image i of this set is row _rows[i] (a subset); null: row i
    readonly BackgroundFill? _fill;        // decoding still under way, or null: every row is there
    readonly PreprocessConfig _preprocess;

    PreparedImages(byte[] pixels, int[]? rows, int[] labels, int size, IReadOnlyList<string> classes, PreprocessConfig preprocess, BackgroundFill? fill)
    {
        _pixels = pixels; _rows = rows; Labels = labels; Size = size; ClassNames = classes; _preprocess = preprocess; _fill = fill;
    }

    /// <summary>What decoding noticed but did not refuse, one line per image (a truncated JPEG decoded as libjpeg does). Waits
    /// until every image is prepared.</summary>
    public IReadOnlyList<string> Warnings => Complete()._fill?.Warnings ?? [];

    /// <summary>Decodes and resizes every image (in parallel) before returning. Training and evaluation images are resized to the
    /// input size directly (crop fraction 1: the whole image, as the task data was collected) unless <paramref name="preprocess"/>
    /// says otherwise.</summary>
    public static PreparedImages From(IImageDataset dataset, PreprocessConfig preprocess, CancellationToken cancel = default) =>
        Stream(dataset, preprocess, cancel).Complete();

    /// <summary>Starts decoding and resizing every image on background threads (<see cref="Parallelism.Threads"/> of them) and
    /// returns at once: <see cref="Batch"/> waits only for its own images, decoded ahead of the rest. Labels are read now.</summary>
    public static PreparedImages Stream(IImageDataset dataset, PreprocessConfig preprocess, CancellationToken cancel = default)
    {
        int n = dataset.Count, s = preprocess.InputSize, plane = s * s * 3;
        if (n == 0) throw new ArgumentException("The dataset has no images.");
        Limits.Check("The image size", s, 1, Limits.MaxImageSize);
        if ((long)n * plane > Array.MaxLength)
            throw new LimitExceededException($"{n} images at {s}×{s} need {(long)n * plane:N0} bytes, more than one array holds ({Array.MaxLength:N0}): use fewer images (--limit) or a smaller image size.");
        var pixels = new byte[(long)n * plane];
        var labels = new int[n];
        for (int i = 0; i < n; i++) labels[i] = dataset.LabelOf(i);
        var fill = new BackgroundFill(dataset, preprocess, pixels, labels, cancel);
        var prepared = new PreparedImages(pixels, null, labels, s, dataset.ClassNames, preprocess, fill);
        // a label outside the classes is the data set's error, not an image's: named now, with every bad image of the set
        return fill.HasBadLabels ? prepared.Complete() : prepared;
    }

    /// <summary>True once every image is prepared (or found bad).</summary>
    public bool IsComplete => _fill is null || _fill.IsDone;

    /// <summary>Waits until every image is prepared; throws, naming every bad image, when any could not be used.</summary>
    public PreparedImages Complete()
    {
        _fill?.WaitAll();
        return this;
    }

    /// <summary>Asks for these images to be decoded next, without waiting (the batch after the one being computed).</summary>
    public void Prefetch(ReadOnlySpan<int> indices)
    {
        if (_fill is null || _fill.IsDone) return;
        foreach (var i in indices) _fill.Request(Row(i));
    }

    /// <summary>Stops the background decoding (what is prepared stays usable; asking for the rest throws).</summary>
    internal void StopPreparing() => _fill?.Stop();

    /// <summary>Runs <paramref name="warnings"/> with the decoding warnings once every image is prepared without a bad one (at
    /// once when that is so already; else on the thread that finishes the last image).</summary>
    internal void WhenComplete(Action<IReadOnlyList<string>> warnings)
    {
        if (_fill is null) warnings([]);
        else _fill.WhenDone(warnings);
    }

    int Row(int i) => _rows is null ? i : _rows[i];

    /// <summary>SHA-256 of the prepared pixels, labels and normalisation (hex, first 32 digits): identifies the data a cache was built
    /// from. Waits until every image is prepared.</summary>
    public string Fingerprint => _fingerprint ??= ComputeFingerprint();
    string? _fingerprint;

    string ComputeFingerprint()
    {
        Complete();
        int plane = Size * Size * 3;
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        if (_rows is null) sha.AppendData(_pixels);
        else foreach (var r in _rows) sha.AppendData(_pixels, (int)((long)r * plane), plane);   // the subset's pixels, in its order
        sha.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(Labels.AsSpan()));
        sha.AppendData(System.Text.Encoding.UTF8.GetBytes($"{Size};{string.Join(',', _preprocess.Mean)};{string.Join(',', _preprocess.Std)}"));
        return Convert.ToHexStringLower(sha.GetHashAndReset())[..32];
    }

    /// <summary>The normalised batch [B, 3, S, S] for these indices (waiting for them to be prepared, decoding them first).</summary>
    public Tensor Batch(ReadOnlySpan<int> indices)
    {
        int s = Size, plane = s * s * 3;
        var rows = new int[indices.Length];
        for (int i = 0; i < rows.Length; i++)
        {
            if ((uint)indices[i] >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(indices), $"Image index {indices[i]} is outside the {Count} images.");
            rows[i] = Row(indices[i]);
        }
        _fill?.Wait(rows);
        var x = new Tensor([rows.Length, 3, s, s]);
        Parallelism.For(0, rows.Length, b =>
        {
            var img = new RgbImage(s, s, _pixels.AsSpan((int)((long)rows[b] * plane), plane).ToArray());
            ImageTransforms.ToNormalizedChw(img, _preprocess.Mean, _preprocess.Std, x.Data.AsSpan(b * plane, plane));
        });
        return x;
    }

    /// <summary>A view of some images (for train/validation splits of an already prepared set): the same pixels, not copied; a
    /// set still being prepared stays so.</summary>
    public PreparedImages Subset(IReadOnlyList<int> indices)
    {
        var rows = new int[indices.Count];
        var labels = new int[indices.Count];
        for (int i = 0; i < indices.Count; i++)
        {
            if ((uint)indices[i] >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(indices), $"Image index {indices[i]} is outside the {Count} images.");
            rows[i] = Row(indices[i]);
            labels[i] = Labels[indices[i]];
        }
        return new PreparedImages(_pixels, rows, labels, Size, ClassNames, _preprocess, _fill);
    }

    /// <summary>Decodes a data set's images into the prepared rows on background threads: index order, except the rows a
    /// consumer asked for, which go first; a consumer that waits decodes the rows it waits for itself rather than idle.</summary>
    sealed class BackgroundFill
    {
        const int Waiting = 0, Taken = 1, Ready = 2, Failed = 3;
        readonly IImageDataset _dataset;
        readonly PreprocessConfig _preprocess;
        readonly byte[] _pixels;
        readonly int[] _state;
        readonly ConcurrentQueue<int> _asked = new();
        readonly ConcurrentBag<(int Index, string Message, Exception? Error)> _failures = new();
        readonly ConcurrentBag<(int Index, string Message)> _warnings = new();
        readonly CancellationTokenSource _stop;
        readonly object _gate = new();
        readonly List<Action<IReadOnlyList<string>>> _whenDone = [];
        int _next, _remaining;
        Exception? _crash;   // an unexpected error in a decoding thread (not a bad image): rethrown to the consumer
        string[]? _sortedWarnings;

        public BackgroundFill(IImageDataset dataset, PreprocessConfig preprocess, byte[] pixels, int[] labels, CancellationToken cancel)
        {
            _dataset = dataset; _preprocess = preprocess; _pixels = pixels;
            int n = labels.Length;
            _state = new int[n];
            _stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            _remaining = n;
            // a label outside the classes is a bad image like an undecodable one (named with the others), and needs no decoding
            for (int i = 0; i < n; i++)
                if ((uint)labels[i] >= (uint)dataset.ClassNames.Count)
                {
                    _failures.Add((i, $"{dataset.SourceOf(i)}: label {labels[i]} is outside the {dataset.ClassNames.Count} classes.", null));
                    _state[i] = Failed;
                    _remaining--;
                    HasBadLabels = true;
                }
            int threads = Math.Min(Parallelism.Threads, _remaining);
            if (_remaining == 0) Finish();
            for (int t = 0; t < threads; t++)
                new Thread(Work) { IsBackground = true, Name = $"mmt-prepare-{t}" }.Start();
        }

        public bool IsDone => Volatile.Read(ref _remaining) == 0;

        public bool HasBadLabels { get; }

        public IReadOnlyList<string> Warnings => _sortedWarnings ?? [];

        public void Request(int row)
        {
            if (Volatile.Read(ref _state[row]) == Waiting) _asked.Enqueue(row);
        }

        public void Stop() => _stop.Cancel();

        /// <summary>The next row to decode, or −1: asked-for rows first, then index order.</summary>
        int Take()
        {
            while (_asked.TryDequeue(out int r))
                if (Interlocked.CompareExchange(ref _state[r], Taken, Waiting) == Waiting) return r;
            while (true)
            {
                int r = Interlocked.Increment(ref _next) - 1;
                if (r >= _state.Length) return -1;
                if (Interlocked.CompareExchange(ref _state[r], Taken, Waiting) == Waiting) return r;
            }
        }

        void Work()
        {
            try
            {
                for (int r; !_stop.IsCancellationRequested && (r = Take()) >= 0;) Prepare(r);
            }
            catch (Exception e)
            {
                lock (_gate) { _crash ??= e; Monitor.PulseAll(_gate); }
            }
        }

        /// <summary>Decodes row <paramref name="r"/> (taken by this thread) into its place, or records why it cannot be used.</summary>
        void Prepare(int r)
        {
            int s = _preprocess.InputSize, plane = s * s * 3;
            int state = Ready;
            try
            {
                var img = _dataset.Load(r);
                if (img.Warning is string warning) _warnings.Add((r, $"{_dataset.SourceOf(r)}: {warning}"));
                var resized = ImageTransforms.ResizeCrop(img, s, _preprocess.CropFraction, _preprocess.Interpolation);
                resized.Pixels.AsSpan(0, plane).CopyTo(_pixels.AsSpan((int)((long)r * plane), plane));
            }
            catch (ImageDecodeException e)
            {
                _failures.Add((r, e.Message, e));
                state = Failed;
            }
            Volatile.Write(ref _state[r], state);
            bool last;
            lock (_gate)
            {
                last = --_remaining == 0;
                Monitor.PulseAll(_gate);
            }
            if (last) Finish();
        }

        void Finish()
        {
            _sortedWarnings = _warnings.OrderBy(w => w.Index).Select(w => w.Message).ToArray();
            Action<IReadOnlyList<string>>[] callbacks;
            lock (_gate) { callbacks = [.. _whenDone]; _whenDone.Clear(); Monitor.PulseAll(_gate); }
            if (_failures.IsEmpty) foreach (var c in callbacks) c(_sortedWarnings);
        }

        public void WhenDone(Action<IReadOnlyList<string>> callback)
        {
            lock (_gate)
            {
                if (_sortedWarnings is null) { _whenDone.Add(callback); return; }
            }
            if (_failures.IsEmpty) callback(_sortedWarnings);
        }

        /// <summary>Waits until these rows are prepared, decoding those no thread has taken yet on the calling thread.</summary>
        public void Wait(ReadOnlySpan<int> rows)
        {
            foreach (var r in rows)
            {
                if (Volatile.Read(ref _state[r]) == Waiting && Interlocked.CompareExchange(ref _state[r], Taken, Waiting) == Waiting) Prepare(r);
                while (true)
                {
                    int st = Volatile.Read(ref _state[r]);
                    if (st == Ready) break;
                    if (st == Failed) { WaitAll(); break; }   // throws, naming every bad image
                    Block(() => Volatile.Read(ref _state[r]) >= Ready);
                }
            }
        }

        /// <summary>Waits until every row is prepared (this thread decoding too); throws naming every bad image.</summary>
        public void WaitAll()
        {
            for (int r; !IsDone && !_stop.IsCancellationRequested && (r = Take()) >= 0;) Prepare(r);
            Block(() => IsDone && _sortedWarnings is not null);
            if (!_failures.IsEmpty) ThrowFailures();
        }

        void Block(Func<bool> done)
        {
            lock (_gate)
                while (!done())
                {
                    if (_crash is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(_crash);
                    _stop.Token.ThrowIfCancellationRequested();
                    Monitor.Wait(_gate, 50);   // the timeout notices a cancellation without a pulse
                }
        }

        void ThrowFailures()
        {
            var sorted = _failures.OrderBy(f => f.Index).ToList();
            if (sorted is [{ Error: { } only }]) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(only);   // one bad image: its own error
            const int Shown = 20;
            throw new InvalidDataException($"{sorted.Count} of {_state.Length} images could not be used; fix or remove them:" + Environment.NewLine +
                string.Join(Environment.NewLine, sorted.Take(Shown).Select(f => "  " + f.Message)) +
                (sorted.Count > Shown ? $"{Environment.NewLine}  … and {sorted.Count - Shown} more" : ""), sorted[0].Error);
        }
    }
}
