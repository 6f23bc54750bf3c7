namespace MLNet.MemoryTokens.Training;

/// <summary>Stops a run that is going wrong, naming the step and the likely cause: a non-finite loss, or a loss that climbed
/// far above where it started without reaching NaN (which used to finish with exit 0 and replace the previous adapter).</summary>
/// <remarks>
/// The loss is smoothed (exponential average, α = 0.1, from the first step) so one bad batch does not stop a run. The run has
/// diverged when, from the third step on, the smoothed loss exceeds <see cref="TrainingOptions.DivergenceFactor"/> × the
/// larger of its first value and ln C (a classifier guessing uniformly over C classes; the floor keeps a resumed run, whose
/// first loss is already low, from being stopped by ordinary noise). A healthy run stays below its start.
/// </remarks>
internal sealed class DivergenceGuard(int classes, double factor)
{
    const double Smoothing = 0.1;
    const int MinSteps = 3;
    double _start, _smoothed;
    int _steps;

    /// <summary>Takes one step's mean loss; throws a <see cref="TrainingDivergedException"/> when the run has diverged.</summary>
    /// <param name="step">1-based global step; <paramref name="epoch"/> and <paramref name="batch"/> 1-based too.</param>
    public void Observe(double loss, long step, int epoch, int batch, float learningRate)
    {
        string where = $"at step {step} (epoch {epoch}, batch {batch})";
        string cause = $"The learning rate ({learningRate:G3} at this step) is likely too high: lower it (--lr), keep gradient clipping on (--clip-norm) or lengthen the warm-up (--warmup-epochs).";
        if (!double.IsFinite(loss))
            throw new TrainingDivergedException($"Training stopped: the loss became {loss} {where}. {cause}");
        if (_steps++ == 0) _start = _smoothed = loss;
        else _smoothed = (1 - Smoothing) * _smoothed + Smoothing * loss;
        double reference = Math.Max(_start, Math.Log(Math.Max(2, classes)));
        if (factor > 0 && _steps >= MinSteps && _smoothed > factor * reference)
            throw new TrainingDivergedException(
                $"Training stopped: the loss diverged {where}: smoothed over recent steps it is {_smoothed:G4}, more than {factor:G3}× its start " +
                $"({reference:G4}; this batch {loss:G4}). {cause}");
    }
}
