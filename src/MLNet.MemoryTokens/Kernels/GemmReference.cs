namespace MLNet.MemoryTokens.Kernels;

/// <summary>The readable triple-loop GEMM (double accumulation): the reference the tuned <see cref="Gemm"/> is tested against.</summary>
public static class GemmReference
{
    /// <summary>C[M,N] = op(A)[M,K] · op(B)[K,N] + beta·C, same conventions as <see cref="Gemm.Multiply(bool,bool,int,int,int,ReadOnlySpan{float},int,ReadOnlySpan{float},int,Span{float},int,float,bool,GemmKernel)"/>.</summary>
    public static void Multiply(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc, float beta = 0f)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double acc = 0;
                for (int p = 0; p < k; p++)
                {
                    float x = transA ? a[p * lda + i] : a[i * lda + p];
                    float y = transB ? b[j * ldb + p] : b[p * ldb + j];
                    acc += (double)x * y;
                }
                ref float dst = ref c[i * ldc + j];
                dst = (float)(acc + (beta == 0f ? 0.0 : (double)beta * dst));
            }
    }
}
