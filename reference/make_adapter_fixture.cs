// Writes a VQT + memory adapter and the logits the engine gives for it, as a fixture that later engines must load and
// reproduce bit for bit (an adapter always loads as it was trained):
//   dotnet run -c Release reference/make_adapter_fixture.cs -- <out folder>
// tests/fixtures/adapters/vqt-memory-35bf619 was written by this script on main at commit 35bf619, before issue 15 (queries
// reading the memory) landed: its adapter_config.json has no queries_read_memory field, and expected.safetensors holds the
// logits of that engine (images [3, 3, 16, 16], logits [3, 4]). Run from the repository root.
#:project ../src/MLNet.MemoryTokens/MLNet.MemoryTokens.csproj
#:property ManagePackageVersionsCentrally=false
#:property PublishAot=false

using MLNet.MemoryTokens;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning;

string outDir = args.Length > 0 ? args[0] : "tests/fixtures/adapters/vqt-memory";
// the parity fixtures' random ViT (D 32, 2 blocks, 2 heads, 16×16 images, 17 tokens)
var backbone = Backbone.Load("tests/fixtures/parity/vit_random.safetensors", new BackboneOptions { Heads = 2, DropHead = true });
var tuning = new TuningOptions { Method = TuningMethod.VqtMemory, MemoryTokens = 3, QueryTokens = 2 };
var model = tuning.CreateModel(backbone.Model, 4, seed: 5);
// every trained tensor well away from its initialisation (uniform ±½), so the memory and the queries move the logits
var rng = new Random(5);
foreach (var p in model.Parameters)
    for (int i = 0; i < p.Value.Length; i++) p.Value.Data[i] += (float)(rng.NextDouble() - 0.5);
var adapter = Adapter.From(model, backbone, tuning, ["a", "b", "c", "d"], backbone.Preprocess);
adapter.Save(outDir);
var images = new Tensor([3, 3, 16, 16], Enumerable.Range(0, 3 * 3 * 16 * 16).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray());
var logits = Adapter.Load(outDir).CreateModel(backbone, outDir).Forward(images, keepForBackward: false);
SafeTensorsFile.Write(Path.Combine(outDir, "expected.safetensors"), new Dictionary<string, Tensor> { ["images"] = images, ["logits"] = logits },
    new Dictionary<string, string> { ["generator"] = "reference/make_adapter_fixture.cs" });
Console.WriteLine($"wrote {outDir}: logits {string.Join(", ", logits.Data.Take(4).Select(v => v.ToString("G9")))} …");
