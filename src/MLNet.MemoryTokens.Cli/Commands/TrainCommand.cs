using System.CommandLine;
using System.Text.Json;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Cli.Plots;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using Spectre.Console;

namespace MLNet.MemoryTokens.Cli.Commands;

/// <summary><c>mmt train</c>: adapt a backbone to a labelled image set and save the adapter.</summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var data = DataOptions.Data("Training images: a folder per class, a CSV of path,label, or IDX files (MNIST/Fashion-MNIST format; a folder of them, or 'folder:test').");
        var validationData = new Option<string?>("--validation-data") { Description = "Validation images (default: a stratified --validation-fraction of --data)." };
        var limit = DataOptions.Limit();
        var methods = TuningMethods.All.Select(m => m.Name).ToArray();
        var method = new Option<string>("--method") { Description = string.Join(" | ", methods), DefaultValueFactory = _ => "memory" };
        method.AcceptOnlyFromAmong(methods);
        var queries = new Option<int>("--queries") { Description = "VQT query tokens per layer (T).", DefaultValueFactory = _ => 1 };
        var queriesSkipMemory = new Option<bool>("--queries-skip-memory") { Description = "VQT + memory: the queries read the original tokens only, not the layer's memory (the composition before the queries read it)." };
        var queryDropout = new Option<float>("--query-dropout") { Description = "VQT dropout on query tokens.", DefaultValueFactory = _ => 0.1f };
        var cacheDir = new Option<string?>("--cache-dir") { Description = "VQT: keep the key/value cache in a file here (reused when backbone, size and data match)." };
        var cacheDType = new Option<string>("--cache-dtype") { Description = "VQT cache element type: f16 | bf16 | f32", DefaultValueFactory = _ => "f16" };
        cacheDType.AcceptOnlyFromAmong("f16", "bf16", "f32");
        var groupLasso = new Option<float>("--group-lasso") { Description = "VQT: group-lasso weight on the head's feature columns (0: off).", DefaultValueFactory = _ => 0f };
        var keepFeatures = new Option<double>("--keep-features") { Description = "VQT compression: keep this fraction of features and retrain the head (1: all).", DefaultValueFactory = _ => 1.0 };
        var tokens = new Option<int>("--tokens") { Description = "Memory tokens per layer (m).", DefaultValueFactory = _ => 5 };
        var masked = new Option<bool>("--masked") { Description = "Attention-masked memory: the pretrained outputs stay exact; the adapter can join a multi-task pass." };
        var extends = new Option<string[]>("--extends") { Description = "Model extension (with --masked): adapter folders this task is trained on top of, in order; its class token also reads their tokens. The multi-task pass then runs them in extension mode.", AllowMultipleArgumentsPerToken = true };
        var noCls = new Option<bool>("--freeze-class-token") { Description = "Memory tuning without training the class token." };
        var epochs = new Option<int>("--epochs") { DefaultValueFactory = _ => 10 };
        var lr = new Option<float>("--lr") { Description = "Peak learning rate.", DefaultValueFactory = _ => 1e-3f };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 32 };
        var optimizer = new Option<string>("--optimizer") { Description = "adamw | sgd", DefaultValueFactory = _ => "adamw" };
        optimizer.AcceptOnlyFromAmong("adamw", "sgd");
        var weightDecay = new Option<float>("--weight-decay") { DefaultValueFactory = _ => 0f };
        var warmup = new Option<double>("--warmup-epochs") { DefaultValueFactory = _ => 1 };
        var smoothing = new Option<float>("--label-smoothing") { DefaultValueFactory = _ => 0.1f };
        var clip = new Option<float>("--clip-norm") { Description = "Global gradient-norm clip (0: off).", DefaultValueFactory = _ => 1f };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 0 };
        var divergence = new Option<double>("--divergence-factor") { Description = "Stop when the smoothed loss rises above this many times its start (0: only on a non-finite loss).", DefaultValueFactory = _ => 3 };
        var valFraction = new Option<double>("--validation-fraction") { DefaultValueFactory = _ => 0.1 };
        var imageSize = new Option<int?>("--image-size") { Description = "Input size (position embedding resampled), e.g. 112." };
        var checkpointDir = new Option<string?>("--checkpoint-dir") { Description = "Save the resumable training state here after every epoch." };
        var resume = new Option<bool>("--resume") { Description = "Continue from --checkpoint-dir." };
        var output = new Option<string>("--out", "-o") { Description = "Adapter folder to write (adapter_config.json + adapter_model.safetensors).", Required = true };
        var plot = new Option<bool?>("--plot") { Description = "Write the loss/accuracy curve per epoch (training_curve.png and .svg) into the adapter folder (default: on when writing to a terminal; --plot false turns it off)." };
        var json = CommonOptions.Json();
        var threads = CommonOptions.Threads();
        var cmd = new Command("train", "Train memory tokens (or a baseline) on a labelled image set and save the adapter.")
        {
            model, data, validationData, limit, method, tokens, masked, extends, noCls, queries, queriesSkipMemory, queryDropout, cacheDir, cacheDType, groupLasso, keepFeatures, epochs, lr, batch, optimizer, weightDecay, warmup, smoothing, clip, seed, divergence,
            valFraction, imageSize, checkpointDir, resume, output, plot, json, threads,
        };
        var backend = BackendOptions.AddTo(cmd);
        cmd.SetAction((r, ct) => Task.FromResult(CommonOptions.Run(() =>
        {
            CommonOptions.ApplyThreads(r.GetValue(threads));
            var compute = backend.Resolve(r, r.GetValue(threads));
            var tuning = new TuningOptions
            {
                Method = ParseMethod(r.GetValue(method)!), MemoryTokens = r.GetValue(tokens), Masked = r.GetValue(masked), TrainClassToken = !r.GetValue(noCls),
                QueryTokens = r.GetValue(queries), QueriesReadMemory = !r.GetValue(queriesSkipMemory), QueryDropout = r.GetValue(queryDropout), CacheDirectory = r.GetValue(cacheDir),
                GroupLasso = r.GetValue(groupLasso), KeepFeatureFraction = r.GetValue(keepFeatures),
                Extends = (r.GetValue(extends) ?? []).SelectMany(e => e.Split(',', StringSplitOptions.RemoveEmptyEntries)).Select(e => CommonOptions.LoadAdapter(r, e)).ToArray(),
                CacheDType = r.GetValue(cacheDType) switch { "bf16" => MLNet.MemoryTokens.IO.TensorDType.BF16, "f32" => MLNet.MemoryTokens.IO.TensorDType.F32, _ => MLNet.MemoryTokens.IO.TensorDType.F16 },
            };
            tuning.Validate();   // sizes and limits before anything is read
            // every output checked before anything is loaded: an --out holding anything but an adapter of ours (or nothing) is
            // refused, never replaced; a folder that cannot be written is found now, not after the training
            var outDir = r.GetValue(output)!;
            Adapter.EnsureCanSave(outDir);
            TrainingOutputs.EnsureWritable(tuning, new TrainingOptions { CheckpointDirectory = r.GetValue(checkpointDir) });
            var train = DataOptions.Open(r.GetValue(data)!, r.GetValue(limit));
            var val = r.GetValue(validationData) is string v ? DataOptions.Open(v, null) : null;
            var backbone = Backbone.Load(r.GetValue(model)!, CommonOptions.Weights(r, new BackboneOptions { ImageSize = r.GetValue(imageSize), DropHead = true }));
            bool asJson = r.GetValue(json);
            var progress = new ProgressPrinter(asJson);
            var options = new TrainingOptions
            {
                Epochs = r.GetValue(epochs), LearningRate = r.GetValue(lr), BatchSize = r.GetValue(batch),
                Optimizer = r.GetValue(optimizer) == "sgd" ? OptimizerKind.Sgd : OptimizerKind.AdamW, WeightDecay = r.GetValue(weightDecay),
                WarmupEpochs = r.GetValue(warmup), LabelSmoothing = r.GetValue(smoothing), GradientClipNorm = r.GetValue(clip), Seed = r.GetValue(seed),
                DivergenceFactor = r.GetValue(divergence),
                ValidationFraction = r.GetValue(valFraction), CheckpointDirectory = r.GetValue(checkpointDir), Resume = r.GetValue(resume),
                Progress = progress, CancellationToken = ct, Compute = compute,
            };
            TrainingResult result;
            try { result = progress.Run(() => Trainer.Train(backbone, train, val, tuning, options)); }
            catch (TrainingDivergedException e) { throw new TrainingDivergedException($"{e.Message} Nothing was saved: '{outDir}' is as it was."); }
            (result.Model as IDisposable)?.Dispose();   // a device model's memory goes back now (the adapter holds the tensors)
            if (result.Adapter.Save(outDir) is string warning) Console.Error.WriteLine($"warning: {warning}");
            string? curve = null;
            if (r.GetValue(plot) ?? (!asJson && !Console.IsOutputRedirected))
                curve = PlotFiles.Save(TrainingCurvePlot.Create(result.History, $"{r.GetValue(method)} on {Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(r.GetValue(data)!)))}"),
                    Path.Combine(outDir, TrainingCurvePlot.FileStem)).Png;
            var last = result.History[^1];
            if (asJson)
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    adapter = Path.GetFullPath(outDir), method = r.GetValue(method), backend = compute.ToString(), trainable_parameters = result.Model.TrainableCount(),
                    training_curve = curve is null ? null : Path.GetFullPath(curve),
                    epochs = result.History.Select(h => new { h.Epoch, train_loss = h.TrainLoss, train_accuracy = h.TrainAccuracy, validation_loss = h.ValidationLoss, validation_accuracy = h.ValidationAccuracy, h.Seconds, images_per_second = h.ImagesPerSecond }),
                }));
            else
                Console.WriteLine($"saved {Path.GetFullPath(outDir)}: {r.GetValue(method)}{(compute.IsManaged ? "" : $" on {compute}")}, {result.Model.TrainableCount():N0} trainable parameters, final train loss {last.TrainLoss:F4}" +
                                  (last.ValidationAccuracy is double a ? $", validation accuracy {a:P2}" : "") + (curve is null ? "" : $"; curve {curve}"));
            return 0;
        }, onCancel: "training cancelled; with --checkpoint-dir, --resume continues from the last finished epoch")));
        return cmd;
    }

    internal static TuningMethod ParseMethod(string s) => TuningMethods.Find(s)?.Method ?? throw new ArgumentException($"Unknown method '{s}'.");

    /// <summary>Progress as a bar on a terminal, as one line per epoch otherwise (or nothing with --json).</summary>
    sealed class ProgressPrinter(bool quiet) : IProgress<TrainingProgress>
    {
        ProgressTask? _bar;
        readonly bool _interactive = !quiet && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

        public T Run<T>(Func<T> body)
        {
            if (!_interactive) return body();
            T result = default!;
            AnsiConsole.Progress().AutoClear(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx => { _bar = ctx.AddTask("preparing", maxValue: 1); result = body(); _bar.StopTask(); });
            return result;
        }

        public void Report(TrainingProgress p)
        {
            if (p.Phase == "warning") { Console.Error.WriteLine($"warning: {p.Message}"); return; }   // on stderr, even with --json
            if (quiet) return;
            if (_bar is not null)
            {
                if (p.TotalSteps > 0) { _bar.MaxValue = p.TotalSteps; _bar.Value = p.Step; }
                _bar.Description = p.Phase switch
                {
                    "train" or "retrain head" => $"{p.Phase} epoch {p.Epoch}/{p.Epochs} loss {p.Loss:F4} {p.ImagesPerSecond:F0} img/s",
                    _ => p.Message ?? p.Phase,
                };
                if (p.Phase == "epoch") AnsiConsole.MarkupLine(Markup.Escape(EpochLine(p)));
                else if (p.Phase is "cache" or "resume" or "compress") AnsiConsole.MarkupLine(Markup.Escape(p.Message ?? ""));
                return;
            }
            if (p.Phase == "warning") { Console.Error.WriteLine($"warning: {p.Message}"); return; }
            if (p.Phase == "epoch") Console.WriteLine(EpochLine(p));
            else if (p.Phase is "prepare" or "resume" or "cache" or "compress") Console.WriteLine(p.Message);
        }

        static string EpochLine(TrainingProgress p) =>
            $"epoch {p.Epoch}/{p.Epochs}: train loss {p.Loss:F4}, {p.ImagesPerSecond:F1} img/s" +
            (p.ValidationAccuracy is double a ? $", validation loss {p.ValidationLoss:F4}, accuracy {a:P2}" : "") + $", ETA {p.Eta:hh\\:mm\\:ss}";
    }
}

/// <summary>Dataset options shared by train and evaluate.</summary>
internal static class DataOptions
{
    public static Option<string> Data(string description) => new("--data", "-d") { Description = description, Required = true };
    public static Option<int?> Limit() => new("--limit") { Description = "Use only the first N images." };

    public static IImageDataset Open(string spec, int? limit)
    {
        var ds = ImageDatasets.Open(spec);
        if (limit is int n)
        {
            if (n < 1) throw new ArgumentException($"--limit must be at least 1, got {n}.");
            ds = ds.Take(Math.Min(n, ds.Count));
        }
        return ds;
    }
}
