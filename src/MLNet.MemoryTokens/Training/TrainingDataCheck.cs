using MLNet.MemoryTokens.Data;

namespace MLNet.MemoryTokens.Training;

/// <summary>What a training set must be before the first step: a task of 2 to <see cref="Limits.MaxClasses"/> classes, at
/// least two of them with images. A one-class set "trains" to 100 % accuracy and teaches nothing.</summary>
internal static class TrainingDataCheck
{
    public static void Check(PreparedImages train)
    {
        int classes = train.ClassNames.Count;
        Limits.Check("The number of classes", classes, 1, Limits.MaxClasses);
        var counts = new int[classes];
        foreach (var label in train.Labels)
        {
            if ((uint)label >= (uint)classes) throw new InvalidDataException($"Label {label} is outside the {classes} classes of the training set.");
            counts[label]++;
        }
        var present = Enumerable.Range(0, classes).Where(c => counts[c] > 0).ToArray();
        if (present.Length < 2)
            throw new InvalidDataException(present.Length == 0
                ? "The training set has no images."
                : $"Every training image is of one class ('{train.ClassNames[present[0]]}', {counts[present[0]]} images): a classifier needs at least two classes with images." +
                  (classes > 1 ? $" The other {classes - 1} class(es) named have none." : ""));
    }
}
