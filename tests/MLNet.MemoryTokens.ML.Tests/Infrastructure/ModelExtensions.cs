using Microsoft.ML;

namespace MLNet.MemoryTokens.ML.Tests;

public static class ModelExtensions
{
    /// <summary>Our classifier inside a fitted chain.</summary>
    public static VitClassifierTransformer GetClassifier(this ITransformer model) => Find<VitClassifierTransformer>(model).Single();

    public static IEnumerable<T> Find<T>(this ITransformer model) where T : ITransformer =>
        model is IEnumerable<ITransformer> chain ? chain.SelectMany(Find<T>) : model is T t ? [t] : [];
}
