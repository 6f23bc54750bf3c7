using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Kernels;

namespace MLNet.MemoryTokens.Data;

/// <summary>Image files decoded and preprocessed for inference (timm's eval transform) on background threads, a few batches
/// ahead of the consumer, handed out in order: decoding overlaps the forward passes that read the batches. A file that cannot
/// be read or decoded is reported in its batch and left out of that batch's images; the others go on.</summary>
/// <remarks>The batches' image buffers are reused: a batch's <see cref="Batch.Images"/> is valid until the next batch is read.
/// Memory is bounded by the batches ahead (<c>ahead + 1</c> buffers of [B, 3, S, S]).</remarks>
public sealed class ImageFileBatches : IDisposable
{
    /// <summary>Files <see cref="Start"/>.. of the list: the images of those that decoded ([decoded, 3, S, S], null when none did),
    /// which files those are (positions in <see cref="Files"/>), and per file its error or warning (null: none).</summary>
    public sealed record Batch(int Start, IReadOnlyList<string> Files, Tensor? Images, IReadOnlyList<int> Decoded,
        IReadOnlyList<string?> Errors, IReadOnlyList<string?> Warnings);

    readonly IReadOnlyList<string> _files;
    readonly PreprocessConfig _preprocess;
    readonly int _batch, _ring, _plane;
    readonly float[][] _buffers;
    readonly string?[] _errors, _warnings;
    readonly int[] _pending;            // per ring slot: files of its batch not yet done
    readonly CancellationTokenSource _stop;
    readonly object _gate = new();
    int _next, _released;               // the next file a decoding thread takes; batches the consumer is done with
    Exception? _crash;

    /// <param name="ahead">Batches decoded ahead of the one being consumed.</param>
    /// <param name="threads">Decoding threads (default <see cref="Parallelism.Threads"/>).</param>
    public ImageFileBatches(IReadOnlyList<string> files, PreprocessConfig preprocess, int batchSize, int ahead = 2, int? threads = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(files);
        ArgumentNullException.ThrowIfNull(preprocess);
        Limits.Check("The batch size", batchSize, 1, Limits.MaxBatch);
        Limits.Check("The image size", preprocess.InputSize, 1, Limits.MaxImageSize);
        if (ahead < 1) throw new ArgumentOutOfRangeException(nameof(ahead), "At least one batch ahead.");
        _files = files; _preprocess = preprocess; _batch = batchSize; _ring = ahead + 1;
        _plane = 3 * preprocess.InputSize * preprocess.InputSize;
        int perBatch = Math.Min(batchSize, Math.Max(1, files.Count));
        Limits.CheckElements($"A batch of {perBatch} images at {preprocess.InputSize}×{preprocess.InputSize}", (long)perBatch * _plane);
        _buffers = Enumerable.Range(0, Math.Min(_ring, (files.Count + batchSize - 1) / batchSize)).Select(_ => new float[(long)perBatch * _plane]).ToArray();
        _errors = new string?[files.Count];
        _warnings = new string?[files.Count];
        _pending = new int[_ring];
        for (int k = 0; k < Math.Min(_ring, BatchCount); k++) _pending[k] = BatchLength(k);
        _stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        int n = Math.Min(threads ?? Parallelism.Threads, files.Count);
        for (int t = 0; t < n; t++) new Thread(Work) { IsBackground = true, Name = $"mmt-decode-{t}" }.Start();
    }

    int BatchCount => (_files.Count + _batch - 1) / _batch;
    int BatchLength(int k) => Math.Min(_batch, _files.Count - k * _batch);

    void Work()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                int i = Interlocked.Increment(ref _next) - 1;
                if (i >= _files.Count) return;
                int k = i / _batch;
                // the ring slot of batch k is free once the consumer is done with batch k − ring
                lock (_gate)
                    while (k >= _released + _ring && !_stop.IsCancellationRequested) Monitor.Wait(_gate, 100);
                if (_stop.IsCancellationRequested) return;
                Decode(i, _buffers[k % _ring].AsSpan((i - k * _batch) * _plane, _plane));
                lock (_gate)
                {
                    _pending[k % _ring]--;
                    Monitor.PulseAll(_gate);
                }
            }
        }
        catch (Exception e)
        {
            lock (_gate) { _crash ??= e; Monitor.PulseAll(_gate); }
        }
    }

    void Decode(int i, Span<float> into)
    {
        try
        {
            var image = ImageDecoder.Load(_files[i]);
            _warnings[i] = image.Warning;
            ImageTransforms.Preprocess(image, _preprocess.InputSize, _preprocess.CropFraction, _preprocess.Interpolation, _preprocess.Mean, _preprocess.Std, into);
        }
        catch (Exception e) when (e is ImageDecodeException or IOException or UnauthorizedAccessException)
        {
            _errors[i] = e.Message;
        }
    }

    /// <summary>The batches in order, each once its files are decoded (the next ones decoding meanwhile).</summary>
    public IEnumerable<Batch> Read()
    {
        for (int k = 0; k < BatchCount; k++)
        {
            _stop.Token.ThrowIfCancellationRequested();   // also when the batch is ready: a cancelled run hands out nothing more
            lock (_gate)
                while (_pending[k % _ring] > 0)
                {
                    if (_crash is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(_crash);
                    _stop.Token.ThrowIfCancellationRequested();
                    Monitor.Wait(_gate, 100);
                }
            int start = k * _batch, count = BatchLength(k);
            var decoded = Enumerable.Range(0, count).Where(j => _errors[start + j] is null).ToArray();
            var buffer = _buffers[k % _ring];
            Tensor? images = null;
            int s = _preprocess.InputSize;
            if (decoded.Length == count && buffer.Length == (long)count * _plane) images = new Tensor([count, 3, s, s], buffer);   // no copy
            else if (decoded.Length > 0)
            {
                images = new Tensor([decoded.Length, 3, s, s]);
                for (int j = 0; j < decoded.Length; j++) buffer.AsSpan(decoded[j] * _plane, _plane).CopyTo(images.Data.AsSpan(j * _plane, _plane));
            }
            yield return new Batch(start, Slice(_files, start, count), images, decoded, Slice(_errors, start, count), Slice(_warnings, start, count));
            lock (_gate)
            {
                // batch k's slot goes to batch k + ring
                _released = k + 1;
                if (k + _ring < BatchCount) _pending[k % _ring] = BatchLength(k + _ring);
                Monitor.PulseAll(_gate);
            }
        }
    }

    static T[] Slice<T>(IReadOnlyList<T> list, int start, int count)
    {
        var a = new T[count];
        for (int j = 0; j < count; j++) a[j] = list[start + j];
        return a;
    }

    /// <summary>Stops the decoding threads (a consumer that stops early).</summary>
    public void Dispose()
    {
        _stop.Cancel();
        lock (_gate) Monitor.PulseAll(_gate);
    }
}
