using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MLNet.MemoryTokens.Kernels;

/// <summary>What a GEMM does to each finished tile while it is still in L1 (saves a pass over the output).</summary>
internal enum Epilogue
{
    None,
    /// <summary>C = gelu(acc + bias); gelu'(acc + bias) goes to aux when given (what backward multiplies by).</summary>
    Gelu,
    /// <summary>C = acc ⊙ aux: the GELU backward applied to the product dout·W, aux holding the forward's gelu'.</summary>
    MultiplyByAux,
}

/// <summary>Which micro-kernel a GEMM runs: the widest the CPU accelerates by default, narrower ones for tests and fallbacks.</summary>
public enum GemmKernel { Auto, Scalar, Vector256, Vector512 }

/// <summary>Single-precision GEMM, <c>C = op(A)·op(B) + beta·C</c>, cache-blocked with packed panels (BLIS loop order),
/// a register-tiled Vector512 / Vector256 / scalar micro-kernel, and parallel across cores.</summary>
/// <remarks>
/// Shapes: op(A) [M, K], op(B) [K, N], C [M, N], all row-major with leading dimensions lda, ldb, ldc.
/// transA means A is stored [K, M]; transB means B is stored [N, K] (a PyTorch Linear weight is B with transB).
/// Loop nest: for each K block (KC) → pack B panels (KC×NR) → per task: pack an A block (MC×KC, L2-sized)
/// → for each NR panel → for each MR strip → micro-kernel. Packing pads to full MR/NR tiles with zeros, so the
/// kernel never branches on edges; only the store of an edge tile goes through a small scratch tile.
/// </remarks>
public static unsafe class Gemm
{
    const int KC = 768;   // K block: covers ViT-Ti's K (192, 768) in one pass; measured faster than 256 (C round trips cost more than L1 misses)
    const int MC = 192;   // M block: the packed A block (MC×KC) stays in L2

    internal readonly record struct Shape(int MR, int NR);

    static readonly GemmKernel Best =
        Vector512.IsHardwareAccelerated ? GemmKernel.Vector512 :
        Vector256.IsHardwareAccelerated ? GemmKernel.Vector256 : GemmKernel.Scalar;

    /// <summary>The micro-kernel used when <see cref="GemmKernel.Auto"/> is asked for (override with env MMT_GEMM_KERNEL).</summary>
    public static GemmKernel DefaultKernel { get; set; } = ParseOverride() ?? Best;

    static GemmKernel? ParseOverride() =>
        Enum.TryParse<GemmKernel>(Environment.GetEnvironmentVariable("MMT_GEMM_KERNEL"), true, out var k) && k != GemmKernel.Auto ? k : null;

    /// <summary>True when <paramref name="kernel"/> can run on this CPU.</summary>
    public static bool IsSupported(GemmKernel kernel) => kernel switch
    {
        GemmKernel.Vector512 => Vector512.IsHardwareAccelerated,
        GemmKernel.Vector256 => Vector256.IsHardwareAccelerated,
        _ => true,
    };

    static GemmKernel Resolve(GemmKernel k)
    {
        if (k == GemmKernel.Auto) k = DefaultKernel;
        if (!IsSupported(k)) throw new PlatformNotSupportedException($"GEMM kernel {k} is not accelerated on this CPU.");
        return k;
    }

    internal static Shape TileOf(GemmKernel k) => k switch
    {
        GemmKernel.Vector512 => new(8, 32),
        GemmKernel.Vector256 => new(6, 16),
        _ => new(4, 4),
    };

    /// <summary>C[M,N] = op(A)[M,K] · op(B)[K,N] + beta·C.</summary>
    /// <param name="parallel">Split the work across <see cref="Parallelism.Threads"/>; pass false when the caller already runs in parallel.</param>
    public static void Multiply(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        Span<float> c, int ldc, float beta = 0f, bool parallel = true, GemmKernel kernel = GemmKernel.Auto)
    {
        Validate(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        if (m == 0 || n == 0) return;
        fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
            Multiply(transA, transB, m, n, k, pa, lda, pb, ldb, pc, ldc, beta, parallel, kernel);
    }

    /// <summary>Pointer form of <see cref="Multiply(bool,bool,int,int,int,ReadOnlySpan{float},int,ReadOnlySpan{float},int,Span{float},int,float,bool,GemmKernel)"/>,
    /// for strided views (one attention head inside a [N, 3D] qkv row) that a span cannot express without copying. Not validated.</summary>
    internal static void Multiply(bool transA, bool transB, int m, int n, int k,
        float* a, int lda, float* b, int ldb, float* c, int ldc, float beta, bool parallel, GemmKernel kernel = GemmKernel.Auto, float* bias = null)
    {
        if (m == 0 || n == 0) return;
        if (k == 0) { ScaleC(m, n, c, ldc, beta); AddBias(m, n, c, ldc, bias); return; }
        var kind = Resolve(kernel);
        var tile = TileOf(kind);
        int panels = (n + tile.NR - 1) / tile.NR;
        long packedBLength = (long)panels * tile.NR * k;   // 64-bit: Scratch refuses it beyond the tensor limit instead of wrapping
        fixed (float* pb = Scratch.Get(Scratch.Slot.GemmPackedB, packedBLength))
        {
            PackB(transB, n, k, b, ldb, pb, tile.NR, parallel);
            MultiplyPacked(transA, m, n, k, a, lda, pb, c, ldc, beta, parallel, kind, tile, bias);
        }
    }

    /// <summary>A matrix packed once into B panels for reuse across many products (frozen weights).</summary>
    public sealed class PackedB
    {
        internal readonly float[] Data; // [kBlocks][panels][kc][NR], zero-padded to NR
        public int K { get; }
        public int N { get; }
        internal GemmKernel Kernel { get; }
        internal PackedB(float[] data, int k, int n, GemmKernel kernel) { Data = data; K = k; N = n; Kernel = kernel; }
    }

    /// <summary>Packs op(B) [K, N] once. For a Linear weight W [N_out, K_in] use transB = true.</summary>
    public static PackedB Pack(bool transB, int k, int n, ReadOnlySpan<float> b, int ldb, GemmKernel kernel = GemmKernel.Auto)
    {
        var kind = Resolve(kernel);
        var tile = TileOf(kind);
        CheckPackedOperand(transB, k, n, b.Length, ldb);
        if (k < 0 || n < 0 || ldb < 1) throw new ArgumentOutOfRangeException(nameof(k), $"Invalid packed GEMM operand K={k} N={n} ldb={ldb}.");
        int panels = (n + tile.NR - 1) / tile.NR;
        var data = new float[Math.Max(1, Limits.CheckElements("A packed GEMM operand", (long)panels * tile.NR * k))];
        fixed (float* pb = b) fixed (float* pd = data) PackB(transB, n, k, pb, ldb, pd, tile.NR, parallel: false);
        return new PackedB(data, k, n, kind);
    }

    /// <summary>Packs op(B) again into <paramref name="packed"/>'s own buffer (same K, N and kernel): what a trained weight needs
    /// after each optimizer step, without a fresh array each time (at ViT-B full fine-tuning that was 0.7 GB of garbage per step).
    /// The panels keep the micro-kernel they were first packed for (a later change of <see cref="DefaultKernel"/> applies to
    /// panels packed after it).</summary>
    internal static void Repack(PackedB packed, bool transB, ReadOnlySpan<float> b, int ldb)
    {
        int k = packed.K, n = packed.N;
        CheckPackedOperand(transB, k, n, b.Length, ldb);
        fixed (float* pb = b) fixed (float* pd = packed.Data) PackB(transB, n, k, pb, ldb, pd, TileOf(packed.Kernel).NR, parallel: false);
    }

    /// <summary>op(B) [K, N] read from <paramref name="length"/> elements with row stride <paramref name="ldb"/> fits them (64-bit).</summary>
    static void CheckPackedOperand(bool transB, int k, int n, long length, int ldb)
    {
        long need = transB ? (long)(n - 1) * ldb + k : (long)(k - 1) * ldb + n;
        if (k > 0 && n > 0 && length < need) throw new ArgumentException($"B has {length} elements, needs {need}.", "b");
    }

    /// <summary>C[M,N] = op(A)[M,K] · B + beta·C with B packed by <see cref="Pack"/>.</summary>
    public static void Multiply(bool transA, int m, ReadOnlySpan<float> a, int lda, PackedB b, Span<float> c, int ldc, float beta = 0f, bool parallel = true)
    {
        Validate(transA, false, m, b.N, b.K, a.Length, lda, long.MaxValue, b.N, c.Length, ldc);
        if (m == 0 || b.N == 0) return;
        fixed (float* pa = a) fixed (float* pc = c)
            Multiply(transA, m, pa, lda, b, pc, ldc, beta, parallel);
    }

    internal static void Multiply(bool transA, int m, float* a, int lda, PackedB b, float* c, int ldc, float beta, bool parallel, float* bias = null,
        Epilogue epilogue = Epilogue.None, float* aux = null)
    {
        if (m == 0 || b.N == 0) return;
        if (b.K == 0) throw new ArgumentException("Packed B has K = 0.");
        if (epilogue != Epilogue.None && (b.K > KC || beta != 0f || b.Kernel != GemmKernel.Vector512 || (epilogue == Epilogue.MultiplyByAux && aux == null)))
            throw new ArgumentException("GEMM epilogues run on the Vector512 kernel, in one K block, with beta = 0 (and GeluGrad needs its aux input).");
        fixed (float* pb = b.Data)
            MultiplyPacked(transA, m, b.N, b.K, a, lda, pb, c, ldc, beta, parallel, b.Kernel, TileOf(b.Kernel), bias, epilogue, aux);
    }

    /// <summary>True when <see cref="Epilogue"/>s can run for a packed B (else the caller applies the activation in its own pass).</summary>
    internal static bool SupportsEpilogue(PackedB b) => b.Kernel == GemmKernel.Vector512 && b.K <= KC;

    static void Validate(bool transA, bool transB, int m, int n, int k, long aLen, int lda, long bLen, int ldb, long cLen, int ldc)
    {
        if (m < 0 || n < 0 || k < 0) throw new ArgumentOutOfRangeException(nameof(m), $"Negative GEMM size M={m} N={n} K={k}.");
        int aCols = transA ? m : k, aRows = transA ? k : m;
        int bCols = transB ? k : n, bRows = transB ? n : k;
        if (lda < Math.Max(1, aCols)) throw new ArgumentException($"lda={lda} is smaller than A's row length {aCols}.");
        if (ldb < Math.Max(1, bCols)) throw new ArgumentException($"ldb={ldb} is smaller than B's row length {bCols}.");
        if (ldc < Math.Max(1, n)) throw new ArgumentException($"ldc={ldc} is smaller than C's row length {n}.");
        if (aRows > 0 && aCols > 0 && aLen < (long)(aRows - 1) * lda + aCols) throw new ArgumentException($"A has {aLen} elements, too few for [{aRows}, {aCols}] with lda={lda}.");
        if (bRows > 0 && bCols > 0 && bLen < (long)(bRows - 1) * ldb + bCols) throw new ArgumentException($"B has {bLen} elements, too few for [{bRows}, {bCols}] with ldb={ldb}.");
        if (m > 0 && n > 0 && cLen < (long)(m - 1) * ldc + n) throw new ArgumentException($"C has {cLen} elements, too few for [{m}, {n}] with ldc={ldc}.");
    }

    static void AddBias(int m, int n, float* c, int ldc, float* bias)
    {
        if (bias == null) return;
        var b = new ReadOnlySpan<float>(bias, n);
        for (int i = 0; i < m; i++) { var row = new Span<float>(c + (long)i * ldc, n); System.Numerics.Tensors.TensorPrimitives.Add(row, b, row); }
    }

    static void ScaleC(int m, int n, float* c, int ldc, float beta)
    {
        if (beta == 1f) return;
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + (long)i * ldc, n);
            if (beta == 0f) row.Clear(); else System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
        }
    }

    // Packed B layout: for K block kb (kc rows, starting at k0), panel p occupies [kc × NR] at offset k0*Npad + p*kc*NR,
    // element (kk, j) at kk*NR + j. Npad = panels*NR, so each K block is contiguous.
    static void PackB(bool transB, int n, int k, float* b, int ldb, float* dst, int nr, bool parallel)
    {
        int panels = (n + nr - 1) / nr;
        int npad = panels * nr;
        if (!transB)
        {
            // op(B)[kk, j] = B[kk*ldb + j]: read whole rows (long runs the prefetchers follow: the weight-gradient GEMMs stream
            // a 6,304-row B), each row handing every panel its NR values; jobs of 64 rows.
            const int Chunk = 64;
            int chunks = (k + Chunk - 1) / Chunk;
            var rowsBody = (int job) =>
            {
                int kk0 = job * Chunk, kk1 = Math.Min(k, kk0 + Chunk);
                for (int kk = kk0; kk < kk1; kk++)
                {
                    int kb = kk / KC, k0 = kb * KC, kc = Math.Min(KC, k - k0);
                    float* src = b + (long)kk * ldb;
                    float* d = dst + (long)k0 * npad + (long)(kk - k0) * nr;
                    for (int p = 0; p < panels; p++, d += (long)kc * nr)
                    {
                        int j0 = p * nr, cols = Math.Min(nr, n - j0), j = 0;
                        if (cols == nr) for (; j <= nr - 8; j += 8) Vector256.Store(Vector256.Load(src + j0 + j), d + j);
                        for (; j < cols; j++) d[j] = src[j0 + j];
                        for (; j < nr; j++) d[j] = 0f;
                    }
                }
            };
            if (parallel && (long)k * n >= 1 << 16 && Parallelism.Threads > 1) Parallelism.For(0, chunks, rowsBody);
            else for (int job = 0; job < chunks; job++) rowsBody(job);
            return;
        }
        // op(B)[kk, j] = B[j*ldb + kk]: per (K block, panel), 8 stored rows × 8 k transposed in registers where whole,
        // scattered otherwise
        int jobs = (k + KC - 1) / KC * panels;
        var body = (int job) =>
        {
            int kb = job / panels, p = job % panels;
            int k0 = kb * KC, kc = Math.Min(KC, k - k0);
            int j0 = p * nr, cols = Math.Min(nr, n - j0);
            float* d = dst + (long)k0 * npad + (long)p * kc * nr;
            int jFull = Avx.IsSupported && nr % 8 == 0 ? cols / 8 * 8 : 0;
            for (int j8 = 0; j8 < jFull; j8 += 8)
            {
                float* src = b + (long)(j0 + j8) * ldb + k0;
                int kk = 0;
                for (; kk <= kc - 8; kk += 8) Transpose8x8(src + kk, ldb, d + kk * nr + j8, nr);
                for (; kk < kc; kk++)
                    for (int j = 0; j < 8; j++) d[kk * nr + j8 + j] = src[(long)j * ldb + kk];
            }
            for (int j = jFull; j < cols; j++)
            {
                float* src = b + (long)(j0 + j) * ldb + k0;
                for (int kk = 0; kk < kc; kk++) d[kk * nr + j] = src[kk];
            }
            for (int j = cols; j < nr; j++)
                for (int kk = 0; kk < kc; kk++) d[kk * nr + j] = 0f;
        };
        if (parallel && (long)k * n >= 1 << 16 && Parallelism.Threads > 1)
            Parallelism.For(0, jobs, body);
        else
            for (int job = 0; job < jobs; job++) body(job);
    }

    // Packed A block: MR-row strips, each [kc × MR] with element (kk, r) at kk*MR + r, zero-padded rows.
    static void PackA(bool transA, int rows, int kc, float* a, int lda, int i0, int k0, float* dst, int mr)
    {
        int strips = (rows + mr - 1) / mr;
        if (transA)
        {
            // op(A)[i, kk] = A[kk*lda + i]: 8 rows of A at a time, each strip taking its 8 × MR values as whole cache lines
            // (one row at a time wrote 32 bytes to each of the strips, which sit a multiple of 4 KiB apart and fought over
            // the same L1 sets; one strip at a time strided down all kc rows per strip)
            for (int kk0 = 0; kk0 < kc; kk0 += 8)
            {
                int kn = Math.Min(8, kc - kk0);
                float* src = a + (long)(k0 + kk0) * lda + i0;
                // the rows are short runs a page apart, which the hardware prefetchers barely follow: ask 32 rows ahead
                if (Sse.IsSupported && kk0 + 40 <= kc)
                    for (int kk = 32; kk < 40; kk++)
                        for (int off = 0; off < rows; off += 16) Sse.Prefetch0(src + (long)kk * lda + off);
                for (int st = 0; st < strips; st++)
                {
                    int r0 = st * mr, valid = Math.Min(mr, rows - r0);
                    float* d = dst + (long)st * kc * mr + kk0 * mr;
                    for (int kk = 0; kk < kn; kk++)
                    {
                        float* row = d + kk * mr;
                        float* from = src + (long)kk * lda + r0;
                        if (valid == 8 && mr == 8) { Vector256.Store(Vector256.Load(from), row); continue; }
                        int r = 0;
                        for (; r < valid; r++) row[r] = from[r];
                        for (; r < mr; r++) row[r] = 0f;
                    }
                }
            }
            return;
        }
        for (int st = 0; st < strips; st++)
        {
            int r0 = st * mr, valid = Math.Min(mr, rows - r0);
            float* d = dst + (long)st * kc * mr;
            int kk0 = 0;
            if (mr == 8 && valid == 8 && Avx.IsSupported)
            {
                // 8 rows × 8 k at a time: load 8 row pieces, transpose in registers, store 8 contiguous k-slices.
                float* src0 = a + (long)(i0 + r0) * lda + k0;
                for (; kk0 <= kc - 8; kk0 += 8) Transpose8x8(src0 + kk0, lda, d + kk0 * 8, 8);
            }
            for (int r = 0; r < valid; r++)
            {
                float* src = a + (long)(i0 + r0 + r) * lda + k0;
                for (int kk = kk0; kk < kc; kk++) d[kk * mr + r] = src[kk];
            }
            for (int r = valid; r < mr; r++)
                for (int kk = 0; kk < kc; kk++) d[kk * mr + r] = 0f;
        }
    }

    // bias (nullable, [N]) is added to every row of C in the first K block's store: the Linear bias epilogue.
    /// <summary>dst[c·dstStride + r] = src[r·srcStride + c] for an 8×8 block (AVX unpack/shuffle/permute transpose).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Transpose8x8(float* src, long srcStride, float* dst, int dstStride)
    {
        var r0 = Avx.LoadVector256(src); var r1 = Avx.LoadVector256(src + srcStride);
        var r2 = Avx.LoadVector256(src + 2 * srcStride); var r3 = Avx.LoadVector256(src + 3 * srcStride);
        var r4 = Avx.LoadVector256(src + 4 * srcStride); var r5 = Avx.LoadVector256(src + 5 * srcStride);
        var r6 = Avx.LoadVector256(src + 6 * srcStride); var r7 = Avx.LoadVector256(src + 7 * srcStride);
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1); var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5); var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE); var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE); var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dst + dstStride, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 2 * dstStride, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dst + 3 * dstStride, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 4 * dstStride, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dst + 5 * dstStride, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 6 * dstStride, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dst + 7 * dstStride, Avx.Permute2x128(u3, u7, 0x31));
    }

    static void MultiplyPacked(bool transA, int m, int n, int k, float* a, int lda, float* packedB,
        float* c, int ldc, float beta, bool parallel, GemmKernel kind, Shape tile, float* bias = null, Epilogue epilogue = Epilogue.None, float* aux = null)
    {
        int mr = tile.MR, nr = tile.NR;
        int panels = (n + nr - 1) / nr;
        int npad = panels * nr;
        int mBlocks = (m + MC - 1) / MC;
        // Enough tasks to keep every core busy: split N into column ranges when M alone does not give them.
        int threads = parallel ? Parallelism.Threads : 1;
        long flops = 2L * m * n * k;
        if (flops < 1 << 22) threads = 1;   // below ~20 µs of work, waking a second thread costs more than it saves
        int nSplits = 1;
        if (threads > 1 && mBlocks < 2 * threads) nSplits = Math.Min(panels, (2 * threads + mBlocks - 1) / mBlocks);
        int tasks = mBlocks * nSplits;
        int panelsPerSplit = (panels + nSplits - 1) / nSplits;
        long mcPad = ((long)Math.Min(MC, m) + mr - 1) / mr * mr;
        int packALength = (int)(mcPad * Math.Min(KC, k));
        // When N is split across tasks, the tasks of one M block share its A panels: pack every block once, up front.
        int kBlocks = (k + KC - 1) / KC;
        // sharing packs every block at once, sized in 64 bits: past the buffer limit (an enormous K) each task packs its own
        long sharedLength = (long)mBlocks * kBlocks * packALength;
        if (sharedLength > Limits.MaxTensorElements) { nSplits = 1; tasks = mBlocks; panelsPerSplit = panels; }
        float[]? sharedA = nSplits > 1 ? ArrayPool<float>.Shared.Rent((int)sharedLength) : null;
        float* sharedBase = null;
        var sharedHandle = sharedA is null ? default : System.Runtime.InteropServices.GCHandle.Alloc(sharedA, System.Runtime.InteropServices.GCHandleType.Pinned);
        if (sharedA is not null)
        {
            sharedBase = (float*)sharedHandle.AddrOfPinnedObject();
            float* sb = sharedBase;
            Parallelism.For(0, mBlocks * kBlocks, job =>
            {
                int mb = job / kBlocks, kb = job % kBlocks, i0 = mb * MC, k0 = kb * KC;
                PackA(transA, Math.Min(MC, m - i0), Math.Min(KC, k - k0), a, lda, i0, k0, sb + (long)job * packALength, mr);
            });
        }

        var body = (int task) =>
        {
            int mb = task / nSplits, split = task % nSplits;
            int i0 = mb * MC, rows = Math.Min(MC, m - i0);
            int p0 = split * panelsPerSplit, p1 = Math.Min(panels, p0 + panelsPerSplit);
            if (p0 >= p1) return;
            float[]? packA = sharedBase == null ? Scratch.Get(Scratch.Slot.GemmPackedA, packALength) : null;
            float* edge = stackalloc float[8 * 32];
            float* edgeAux = stackalloc float[8 * 32];
            {
                fixed (float* own = packA)
                {
                    for (int k0 = 0; k0 < k; k0 += KC)
                    {
                        int kc = Math.Min(KC, k - k0);
                        float* pa = own;
                        if (sharedBase != null) pa = sharedBase + (long)(mb * kBlocks + k0 / KC) * packALength;
                        else PackA(transA, rows, kc, a, lda, i0, k0, pa, mr);
                        bool first = k0 == 0;
                        float* bBlock = packedB + (long)k0 * npad;
                        for (int p = p0; p < p1; p++)
                        {
                            int j0 = p * nr, cols = Math.Min(nr, n - j0);
                            float* bp = bBlock + (long)p * kc * nr;
                            for (int r0 = 0; r0 < rows; r0 += mr)
                            {
                                int valid = Math.Min(mr, rows - r0);
                                float* ap = pa + (long)(r0 / mr) * kc * mr;
                                float* cp = c + (long)(i0 + r0) * ldc + j0;
                                float blockBeta = first ? beta : 1f;
                                float* blockBias = first && bias != null ? bias + j0 : null;
                                float* auxp = aux == null ? null : aux + (long)(i0 + r0) * ldc + j0;
                                if (valid == mr && cols == nr)
                                {
                                    RunKernel(kind, kc, ap, bp, cp, ldc, blockBeta, blockBias);
                                    if (epilogue != Epilogue.None) ApplyEpilogue(epilogue, cp, ldc, auxp, ldc);
                                }
                                else
                                {
                                    RunKernel(kind, kc, ap, bp, edge, nr, 0f, null);
                                    if (epilogue != Epilogue.None)
                                    {
                                        // same vector arithmetic as a full tile, on the padded scratch tile: a row's bits never
                                        // depend on where the tiling put it
                                        for (int r = 0; r < mr; r++)
                                            for (int j = 0; j < nr; j++)
                                            {
                                                bool inside = r < valid && j < cols;
                                                edge[r * nr + j] += inside && blockBias != null ? blockBias[j] : 0f;
                                                edgeAux[r * nr + j] = inside && epilogue == Epilogue.MultiplyByAux ? auxp[(long)r * ldc + j] : 0f;
                                            }
                                        ApplyEpilogue(epilogue, edge, nr, edgeAux, nr);
                                        for (int r = 0; r < valid; r++)
                                            for (int j = 0; j < cols; j++)
                                            {
                                                cp[(long)r * ldc + j] = edge[r * nr + j];
                                                if (epilogue == Epilogue.Gelu && auxp != null) auxp[(long)r * ldc + j] = edgeAux[r * nr + j];
                                            }
                                        continue;
                                    }
                                    StoreEdge(edge, nr, cp, ldc, valid, cols, blockBeta, blockBias);
                                }
                            }
                        }
                    }
                }
            }
        };
        try
        {
            if (threads > 1 && tasks > 1) Parallelism.For(0, tasks, body);
            else for (int t = 0; t < tasks; t++) body(t);
        }
        finally
        {
            if (sharedA is not null) { sharedHandle.Free(); ArrayPool<float>.Shared.Return(sharedA); }
        }
    }

    /// <summary>Writes the valid part of an edge tile computed into scratch: whole vectors where a row has them, scalars for the rest
    /// (attention's 197-row, 202-column products put every sixth tile here).</summary>
    static void StoreEdge(float* edge, int nr, float* c, int ldc, int rows, int cols, float beta, float* bias)
    {
        for (int r = 0; r < rows; r++)
        {
            float* src = edge + r * nr, dst = c + (long)r * ldc;
            int j = 0;
            if (Vector512.IsHardwareAccelerated)
                for (; j <= cols - 16; j += 16)
                {
                    var acc = Vector512.Load(src + j);
                    if (bias != null) acc += Vector512.Load(bias + j);
                    if (beta == 1f) acc += Vector512.Load(dst + j);
                    else if (beta != 0f) acc = Vector512.FusedMultiplyAdd(Vector512.Create(beta), Vector512.Load(dst + j), acc);
                    acc.Store(dst + j);
                }
            for (; j < cols; j++)
            {
                float acc = src[j] + (bias != null ? bias[j] : 0f);
                dst[j] = beta == 0f ? acc : beta == 1f ? dst[j] + acc : beta * dst[j] + acc;
            }
        }
    }

    /// <summary>The epilogue over one finished 8×32 tile (C rows at stride ldc, aux rows at stride ldAux), still in L1.</summary>
    static void ApplyEpilogue(Epilogue epilogue, float* c, int ldc, float* aux, int ldAux)
    {
        for (int r = 0; r < 8; r++)
            for (int j = 0; j < 32; j += 16)
            {
                float* pc = c + (long)r * ldc + j;
                var v = Vector512.Load(pc);
                if (epilogue == Epilogue.MultiplyByAux) (v * Vector512.Load(aux + (long)r * ldAux + j)).Store(pc);
                else if (aux == null) Gelu.Forward(v).Store(pc);
                else
                {
                    Gelu.Forward(v, out var derivative).Store(pc);
                    derivative.Store(aux + (long)r * ldAux + j);
                }
            }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void RunKernel(GemmKernel kind, int kc, float* a, float* b, float* c, int ldc, float beta, float* bias)
    {
        switch (kind)
        {
            case GemmKernel.Vector512: Kernel8x32(kc, a, b, c, ldc, beta, bias); break;
            case GemmKernel.Vector256: Kernel6x16(kc, a, b, c, ldc, beta, bias); break;
            default: Kernel4x4(kc, a, b, c, ldc, beta, bias); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Store512(Vector512<float> acc, float* c, float beta)
    {
        if (beta == 0f) return acc;
        var old = Vector512.Load(c);
        return beta == 1f ? old + acc : Vector512.FusedMultiplyAdd(Vector512.Create(beta), old, acc);
    }

    /// <summary>8×32 tile: 16 zmm accumulators, per K step two B loads and eight broadcasts of A.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel8x32(int kc, float* a, float* b, float* c, int ldc, float beta, float* bias)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        for (int kk = 0; kk < kc; kk++)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            var x = Vector512.Create(a[0]); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a[1]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a[2]); c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a[3]); c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a[4]); c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a[5]); c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(a[6]); c60 = Vector512.FusedMultiplyAdd(x, b0, c60); c61 = Vector512.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(a[7]); c70 = Vector512.FusedMultiplyAdd(x, b0, c70); c71 = Vector512.FusedMultiplyAdd(x, b1, c71);
            a += 8; b += 32;
        }
        if (bias != null)
        {
            var bb0 = Vector512.Load(bias); var bb1 = Vector512.Load(bias + 16);
            c00 += bb0; c01 += bb1; c10 += bb0; c11 += bb1; c20 += bb0; c21 += bb1; c30 += bb0; c31 += bb1;
            c40 += bb0; c41 += bb1; c50 += bb0; c51 += bb1; c60 += bb0; c61 += bb1; c70 += bb0; c71 += bb1;
        }
        float* r = c;
        Store512(c00, r, beta).Store(r); Store512(c01, r + 16, beta).Store(r + 16); r += ldc;
        Store512(c10, r, beta).Store(r); Store512(c11, r + 16, beta).Store(r + 16); r += ldc;
        Store512(c20, r, beta).Store(r); Store512(c21, r + 16, beta).Store(r + 16); r += ldc;
        Store512(c30, r, beta).Store(r); Store512(c31, r + 16, beta).Store(r + 16); r += ldc;
        Store512(c40, r, beta).Store(r); Store512(c41, r + 16, beta).Store(r + 16); r += ldc;
        Store512(c50, r, beta).Store(r); Store512(c51, r + 16, beta).Store(r + 16); r += ldc;
        Store512(c60, r, beta).Store(r); Store512(c61, r + 16, beta).Store(r + 16); r += ldc;
        Store512(c70, r, beta).Store(r); Store512(c71, r + 16, beta).Store(r + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Store256(Vector256<float> acc, float* c, float beta)
    {
        if (beta == 0f) return acc;
        var old = Vector256.Load(c);
        return beta == 1f ? old + acc : Vector256.FusedMultiplyAdd(Vector256.Create(beta), old, acc);
    }

    /// <summary>6×16 tile for AVX2 machines: 12 ymm accumulators fit the 16 registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel6x16(int kc, float* a, float* b, float* c, int ldc, float beta, float* bias)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int kk = 0; kk < kc; kk++)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var x = Vector256.Create(a[0]); c00 = Vector256.FusedMultiplyAdd(x, b0, c00); c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
            x = Vector256.Create(a[1]); c10 = Vector256.FusedMultiplyAdd(x, b0, c10); c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
            x = Vector256.Create(a[2]); c20 = Vector256.FusedMultiplyAdd(x, b0, c20); c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
            x = Vector256.Create(a[3]); c30 = Vector256.FusedMultiplyAdd(x, b0, c30); c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
            x = Vector256.Create(a[4]); c40 = Vector256.FusedMultiplyAdd(x, b0, c40); c41 = Vector256.FusedMultiplyAdd(x, b1, c41);
            x = Vector256.Create(a[5]); c50 = Vector256.FusedMultiplyAdd(x, b0, c50); c51 = Vector256.FusedMultiplyAdd(x, b1, c51);
            a += 6; b += 16;
        }
        if (bias != null)
        {
            var bb0 = Vector256.Load(bias); var bb1 = Vector256.Load(bias + 8);
            c00 += bb0; c01 += bb1; c10 += bb0; c11 += bb1; c20 += bb0; c21 += bb1;
            c30 += bb0; c31 += bb1; c40 += bb0; c41 += bb1; c50 += bb0; c51 += bb1;
        }
        float* r = c;
        Store256(c00, r, beta).Store(r); Store256(c01, r + 8, beta).Store(r + 8); r += ldc;
        Store256(c10, r, beta).Store(r); Store256(c11, r + 8, beta).Store(r + 8); r += ldc;
        Store256(c20, r, beta).Store(r); Store256(c21, r + 8, beta).Store(r + 8); r += ldc;
        Store256(c30, r, beta).Store(r); Store256(c31, r + 8, beta).Store(r + 8); r += ldc;
        Store256(c40, r, beta).Store(r); Store256(c41, r + 8, beta).Store(r + 8); r += ldc;
        Store256(c50, r, beta).Store(r); Store256(c51, r + 8, beta).Store(r + 8);
    }

    /// <summary>Portable 4×4 tile: the fallback where no vector width is accelerated.</summary>
    static void Kernel4x4(int kc, float* a, float* b, float* c, int ldc, float beta, float* bias)
    {
        float* acc = stackalloc float[16];
        for (int i = 0; i < 16; i++) acc[i] = 0f;
        for (int kk = 0; kk < kc; kk++)
        {
            for (int r = 0; r < 4; r++)
            {
                float x = a[r];
                acc[r * 4 + 0] = MathF.FusedMultiplyAdd(x, b[0], acc[r * 4 + 0]);
                acc[r * 4 + 1] = MathF.FusedMultiplyAdd(x, b[1], acc[r * 4 + 1]);
                acc[r * 4 + 2] = MathF.FusedMultiplyAdd(x, b[2], acc[r * 4 + 2]);
                acc[r * 4 + 3] = MathF.FusedMultiplyAdd(x, b[3], acc[r * 4 + 3]);
            }
            a += 4; b += 4;
        }
        for (int r = 0; r < 4; r++)
            for (int j = 0; j < 4; j++)
            {
                float* dst = c + (long)r * ldc + j;
                float v = acc[r * 4 + j] + (bias != null ? bias[j] : 0f);
                *dst = beta == 0f ? v : beta == 1f ? *dst + v : beta * *dst + v;
            }
    }
}
