namespace MLNet.MemoryTokens.Data;

/// <summary>Splits indices per class with a seeded shuffle, so each class keeps its share in both parts.</summary>
public static class StratifiedSplit
{
    /// <summary>
    /// Per class, round(n × <paramref name="validationFraction"/>) randomly chosen images go to validation, the rest to
    /// training; both index lists come back ascending (the dataset's own order).
    /// </summary>
    public static (int[] Train, int[] Validation) Split(IImageDataset dataset, double validationFraction, int seed) =>
        Split(Enumerable.Range(0, dataset.Count).Select(dataset.LabelOf).ToArray(), dataset.ClassNames.Count, validationFraction, seed);

    /// <summary>The same split from the labels alone (label i of image i, classes in [0, <paramref name="classes"/>)).</summary>
    public static (int[] Train, int[] Validation) Split(IReadOnlyList<int> labels, int classes, double validationFraction, int seed)
    {
        if (!(validationFraction >= 0 && validationFraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction, "Must be in [0, 1].");

        var byClass = new List<int>[classes];
        for (int c = 0; c < byClass.Length; c++) byClass[c] = [];
        for (int i = 0; i < labels.Count; i++) byClass[labels[i]].Add(i);

        var rng = new SplitMix64(seed);
        var train = new List<int>(labels.Count);
        var validation = new List<int>();
        foreach (var members in byClass)
        {
            rng.Shuffle(members);
            int take = (int)Math.Round(members.Count * validationFraction, MidpointRounding.AwayFromZero);
            validation.AddRange(members.Take(take));
            train.AddRange(members.Skip(take));
        }
        train.Sort();
        validation.Sort();
        return ([.. train], [.. validation]);
    }

    /// <summary>
    /// SplitMix64 (Steele, Lea &amp; Flood 2014). Written out rather than using <see cref="Random"/> so a seed gives the
    /// same split on every .NET version, and the sequence can be reproduced elsewhere from the published constants.
    /// </summary>
    struct SplitMix64(int seed)
    {
        ulong _state = unchecked((ulong)seed);

        ulong Next() => unchecked(Mix(_state += 0x9E3779B97F4A7C15UL));

        static ulong Mix(ulong z)
        {
            z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
            z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
            return z ^ (z >> 31);
        }

        /// <summary>Fisher–Yates; the bound is applied by the high half of a 128-bit product, whose bias (below n / 2^64) is far smaller than modulo's.</summary>
        public void Shuffle(List<int> items)
        {
            for (int i = items.Count - 1; i > 0; i--)
            {
                int j = (int)Math.BigMul(Next(), (ulong)(i + 1), out _);
                (items[i], items[j]) = (items[j], items[i]);
            }
        }
    }
}
