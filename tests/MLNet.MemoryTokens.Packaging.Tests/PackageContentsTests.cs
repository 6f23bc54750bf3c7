using System.IO.Compression;
using System.Text.Json;
using System.Xml.Linq;
using NotebookRunner;
using Xunit;

namespace MLNet.MemoryTokens.Packaging.Tests;

/// <summary>What `dotnet pack` puts in each package: readme, licence, repository, XML docs, symbols, dependencies, the tool.</summary>
[Collection(PackedFeedCollection.Name)]
public class PackageContentsTests(PackedFeed packed)
{
    public static readonly TheoryData<string> Libraries = new() { "MLNet.MemoryTokens", "MLNet.MemoryTokens.ML" };

    string Nupkg(string id, string extension = "nupkg") => Path.Combine(packed.Feed.Folder, $"{id}.{packed.Version}.{extension}");

    static XElement Nuspec(ZipArchive zip, string id)
    {
        using var stream = zip.GetEntry($"{id}.nuspec")!.Open();
        return XDocument.Load(stream).Root!.Elements().Single(e => e.Name.LocalName == "metadata");
    }

    static string? Value(XElement metadata, string name) => metadata.Elements().SingleOrDefault(e => e.Name.LocalName == name)?.Value;
    static XElement? Element(XElement metadata, string name) => metadata.Elements().SingleOrDefault(e => e.Name.LocalName == name);

    [Fact]
    public void FeedHoldsTheLibrariesTheToolAndTheirSymbolPackages()
    {
        Assert.StartsWith("0.1.0-local.", packed.Version);
        var files = Directory.GetFiles(packed.Feed.Folder).Select(Path.GetFileName).Order().ToArray();
        string[] ids = ["MLNet.MemoryTokens", "MLNet.MemoryTokens.Cli", "MLNet.MemoryTokens.ML"];
        Assert.Equal(ids.SelectMany(id => new[] { $"{id}.{packed.Version}.nupkg", $"{id}.{packed.Version}.snupkg" }).Order(), files);
    }

    [Theory]
    [InlineData("MLNet.MemoryTokens")]
    [InlineData("MLNet.MemoryTokens.ML")]
    [InlineData("MLNet.MemoryTokens.Cli")]
    public void EachPackageCarriesItsReadmeLicenceAndRepository(string id)
    {
        using var zip = ZipFile.OpenRead(Nupkg(id));
        var metadata = Nuspec(zip, id);
        Assert.Equal(id, Value(metadata, "id"));
        Assert.Equal(packed.Version, Value(metadata, "version"));
        Assert.False(string.IsNullOrWhiteSpace(Value(metadata, "description")));
        Assert.Equal("MLNet.MemoryTokens contributors", Value(metadata, "authors"));

        var license = Element(metadata, "license")!;
        Assert.Equal("expression", license.Attribute("type")?.Value);
        Assert.Equal("MIT", license.Value);

        // the readme is the project's own README.md, packed at the root
        Assert.Equal("README.md", Value(metadata, "readme"));
        using (var reader = new StreamReader(zip.GetEntry("README.md")!.Open()))
            Assert.Equal(File.ReadAllText(Repository.Path("src", id, "README.md")), reader.ReadToEnd());

        var repository = Element(metadata, "repository")!;
        Assert.Equal("git", repository.Attribute("type")?.Value);
        if (Directory.Exists(Repository.Path(".git")) || File.Exists(Repository.Path(".git")))
            Assert.Matches("^[0-9a-f]{40}$", repository.Attribute("commit")?.Value ?? "");
    }

    [Theory]
    [MemberData(nameof(Libraries))]
    public void LibrariesShipXmlDocsAndSymbols(string id)
    {
        using (var zip = ZipFile.OpenRead(Nupkg(id)))
        {
            Assert.NotNull(zip.GetEntry($"lib/net10.0/{id}.dll"));
            using var docs = zip.GetEntry($"lib/net10.0/{id}.xml")!.Open();
            var members = XDocument.Load(docs).Descendants("member").ToList();
            Assert.True(members.Count > 50, $"{id}.xml documents only {members.Count} members");
        }
        using var symbols = ZipFile.OpenRead(Nupkg(id, "snupkg"));
        Assert.True(symbols.GetEntry($"lib/net10.0/{id}.pdb")?.Length > 0, $"{id}.snupkg has no {id}.pdb");
    }

    [Fact]
    public void MlPackageDependsOnTheEngineOfTheSameVersionAndOnMlNet6()
    {
        using var zip = ZipFile.OpenRead(Nupkg("MLNet.MemoryTokens.ML"));
        var dependencies = Nuspec(zip, "MLNet.MemoryTokens.ML").Descendants().Where(e => e.Name.LocalName == "dependency")
            .ToDictionary(e => e.Attribute("id")!.Value, e => e.Attribute("version")!.Value);
        Assert.Equal(packed.Version, dependencies["MLNet.MemoryTokens"]);
        Assert.Equal("6.0.0", dependencies["Microsoft.ML"]);
        Assert.Equal("6.0.0", dependencies["Microsoft.ML.ImageAnalytics"]);
    }

    [Fact]
    public void CliPackageIsTheMmtDotnetTool()
    {
        using var zip = ZipFile.OpenRead(Nupkg("MLNet.MemoryTokens.Cli"));
        var metadata = Nuspec(zip, "MLNet.MemoryTokens.Cli");
        Assert.Contains(metadata.Descendants(), e => e.Name.LocalName == "packageType" && e.Attribute("name")?.Value == "DotnetTool");
        using var settings = zip.GetEntry("tools/net10.0/any/DotnetToolSettings.xml")!.Open();
        var command = XDocument.Load(settings).Descendants("Command").Single();
        Assert.Equal("mmt", command.Attribute("Name")?.Value);
        Assert.Equal("mmt.dll", command.Attribute("EntryPoint")?.Value);
        Assert.NotNull(zip.GetEntry("tools/net10.0/any/MLNet.MemoryTokens.dll"));   // the engine travels inside the tool
    }

    /// <summary>src/ projects are packages (the AutoML one too, though Microsoft.ML.AutoML does not restore everywhere);
    /// tests, samples and the notebook runner never are. Read from MSBuild's evaluation of each project.</summary>
    [Fact]
    public void OnlyTheProjectsUnderSrcArePackable()
    {
        var projects = Directory.GetFiles(Repository.Root, "*.csproj", SearchOption.AllDirectories)
            .Where(p => !p.Split(Path.DirectorySeparatorChar).Any(part => part is "bin" or "obj" or ".git")).Order().ToList();
        Assert.Contains(projects, p => p.EndsWith("MLNet.MemoryTokens.AutoML.csproj"));
        foreach (var project in projects)
        {
            var result = ChildProcess.Run(ChildProcess.Dotnet,
                ["msbuild", project, "-getProperty:IsPackable", "-getProperty:PackageId", "-getProperty:PackageReadmeFile", "-getProperty:GenerateDocumentationFile", "-getProperty:PackAsTool"],
                Repository.Root, timeout: TimeSpan.FromMinutes(2));
            Assert.True(result.ExitCode == 0, result.ToString());
            var properties = JsonDocument.Parse(result.Output).RootElement.GetProperty("Properties");
            string Get(string name) => properties.GetProperty(name).GetString() ?? "";
            bool underSrc = Path.GetRelativePath(Repository.Root, project).StartsWith("src" + Path.DirectorySeparatorChar);
            Assert.True(underSrc == (Get("IsPackable") == "true"), $"{project}: IsPackable = {Get("IsPackable")}");
            if (!underSrc) continue;
            Assert.Equal(Path.GetFileNameWithoutExtension(project), Get("PackageId"));
            Assert.Equal("README.md", Get("PackageReadmeFile"));
            Assert.True(File.Exists(Path.Combine(Path.GetDirectoryName(project)!, "README.md")), $"{project} has no README.md");
            Assert.True(Get("PackAsTool") == "true" || Get("GenerateDocumentationFile") == "true", $"{project}: a library without XML docs");
        }
    }
}
