using System.Reflection;
using System.Text;
using MLNet.MemoryTokens.TorchSharp.Native;
using Xunit;

namespace MLNet.MemoryTokens.TorchSharp.Tests;

/// <summary>The ELF edit that lets TorchSharp 0.107 load on an older libstdc++: on hand-built ELF files (every branch) and on
/// the real libLibTorchSharp.so of the NuGet package (read, never written).</summary>
public class ElfVersionNeedsTests
{
    const string Lib = "libstdc++.so.6", New = "GLIBCXX_3.4.32", Old = "GLIBCXX_3.4.30";

    /// <summary>A minimal ELF64 LE shared object: .dynstr, .dynsym (sym_new@GLIBCXX_3.4.32, sym_old@GLIBCXX_3.4.30),
    /// .gnu.version, .gnu.version_r (libstdc++.so.6: both versions), .rela.dyn (relocations against the given symbols),
    /// and a .gnu.version_d defining <paramref name="defines"/>.</summary>
    internal static byte[] BuildElf(int[] relocatedSymbols, string[]? defines = null)
    {
        var str = new MemoryStream();
        str.WriteByte(0);
        int Str(string s) { int at = (int)str.Position; var b = Encoding.ASCII.GetBytes(s); str.Write(b); str.WriteByte(0); return at; }
        int lib = Str(Lib), vNew = Str(New), vOld = Str(Old), sNew = Str("sym_new"), sOld = Str("sym_old");
        var defNames = (defines ?? []).Select(Str).ToArray();
        var dynstr = str.ToArray();

        var dynsym = new byte[3 * 24];
        BitConverter.GetBytes(sNew).CopyTo(dynsym, 24);
        BitConverter.GetBytes(sOld).CopyTo(dynsym, 48);
        var versym = new byte[6];
        BitConverter.GetBytes((ushort)2).CopyTo(versym, 2);   // sym_new → version index 2 (3.4.32)
        BitConverter.GetBytes((ushort)3).CopyTo(versym, 4);   // sym_old → 3 (3.4.30)
        var verneed = new byte[16 + 2 * 16];
        BitConverter.GetBytes((ushort)1).CopyTo(verneed, 0); BitConverter.GetBytes((ushort)2).CopyTo(verneed, 2);
        BitConverter.GetBytes(lib).CopyTo(verneed, 4); BitConverter.GetBytes(16).CopyTo(verneed, 8);
        void Aux(int at, ushort index, int name, int next) { BitConverter.GetBytes((ushort)0).CopyTo(verneed, at + 4); BitConverter.GetBytes(index).CopyTo(verneed, at + 6); BitConverter.GetBytes(name).CopyTo(verneed, at + 8); BitConverter.GetBytes(next).CopyTo(verneed, at + 12); }
        Aux(16, 2, vNew, 16);
        Aux(32, 3, vOld, 0);
        var rela = new byte[24 * relocatedSymbols.Length];
        for (int i = 0; i < relocatedSymbols.Length; i++) BitConverter.GetBytes(((ulong)relocatedSymbols[i] << 32) | 7).CopyTo(rela, 24 * i + 8);
        var verdef = new byte[defNames.Length * 28];
        for (int i = 0; i < defNames.Length; i++)
        {
            int at = i * 28;
            BitConverter.GetBytes((ushort)1).CopyTo(verdef, at); BitConverter.GetBytes((ushort)(i + 1)).CopyTo(verdef, at + 4); BitConverter.GetBytes((ushort)1).CopyTo(verdef, at + 6);
            BitConverter.GetBytes(20).CopyTo(verdef, at + 12); BitConverter.GetBytes(i + 1 < defNames.Length ? 28 : 0).CopyTo(verdef, at + 16);
            BitConverter.GetBytes(defNames[i]).CopyTo(verdef, at + 20);
        }

        // layout: header, section contents, section headers
        var sections = new List<(uint Type, byte[] Data, int Link, int EntSize)>
        {
            (0, [], 0, 0), (3, dynstr, 0, 0), (11, dynsym, 1, 24), (0x6fffffff, versym, 2, 2), (0x6ffffffe, verneed, 1, 0), (4, rela, 2, 24),
        };
        if (defines is not null) sections.Add((0x6ffffffd, verdef, 1, 0));
        var file = new MemoryStream();
        file.Write(new byte[64]);
        var offsets = new List<long>();
        foreach (var s in sections) { offsets.Add(file.Position); file.Write(s.Data); while (file.Position % 8 != 0) file.WriteByte(0); }
        long shoff = file.Position;
        for (int i = 0; i < sections.Count; i++)
        {
            var h = new byte[64];
            BitConverter.GetBytes(sections[i].Type).CopyTo(h, 4);
            BitConverter.GetBytes(offsets[i]).CopyTo(h, 24);
            BitConverter.GetBytes((long)sections[i].Data.Length).CopyTo(h, 32);
            BitConverter.GetBytes(sections[i].Link).CopyTo(h, 40);
            BitConverter.GetBytes((long)sections[i].EntSize).CopyTo(h, 56);
            file.Write(h);
        }
        var bytes = file.ToArray();
        new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F' }.CopyTo(bytes, 0);
        bytes[4] = 2; bytes[5] = 1; bytes[6] = 1;
        BitConverter.GetBytes(shoff).CopyTo(bytes, 0x28);
        BitConverter.GetBytes((ushort)64).CopyTo(bytes, 0x3A);
        BitConverter.GetBytes((ushort)sections.Count).CopyTo(bytes, 0x3C);
        return bytes;
    }

    [Fact]
    public void MarksOnlyThatRequirementWeak()
    {
        var elf = BuildElf(relocatedSymbols: [2]);   // only sym_old is relocated
        var before = (byte[])elf.Clone();
        Assert.Equal(WeakVersionResult.Marked, ElfVersionNeeds.MarkWeak(elf, Lib, New));
        Assert.Single(Enumerable.Range(0, elf.Length), i => elf[i] != before[i]);   // one byte: the flags of that entry
        Assert.Equal([(Lib, New, true), (Lib, Old, false)], ElfVersionNeeds.Requirements(elf));
        Assert.Equal(WeakVersionResult.AlreadyWeak, ElfVersionNeeds.MarkWeak(elf, Lib, New));
        Assert.Equal(WeakVersionResult.NotRequired, ElfVersionNeeds.MarkWeak(elf, Lib, "GLIBCXX_3.4.99"));
        Assert.Equal(WeakVersionResult.NotRequired, ElfVersionNeeds.MarkWeak(elf, "libother.so", New));
    }

    [Fact]
    public void RefusesAVersionThatARelocationBinds()
    {
        var elf = BuildElf(relocatedSymbols: [1, 2]);
        var before = (byte[])elf.Clone();
        var e = Assert.Throws<InvalidOperationException>(() => ElfVersionNeeds.MarkWeak(elf, Lib, New));
        Assert.Contains("sym_new", e.Message);
        Assert.Equal(before, elf);
        Assert.Equal([("sym_new", 1)], ElfVersionNeeds.SymbolsOfVersion(elf, Lib, New));
    }

    [Fact]
    public void ReadsDefinedVersions()
    {
        Assert.Equal([Old, "GLIBCXX_3.4.31"], ElfVersionNeeds.DefinedVersions(BuildElf([], [Old, "GLIBCXX_3.4.31"])));
        Assert.Empty(ElfVersionNeeds.DefinedVersions(BuildElf([])));
    }

    [Fact]
    public void RejectsWhatItCannotRead()
    {
        var good = BuildElf([]);
        Assert.Contains("Not an ELF", Assert.Throws<InvalidDataException>(() => ElfVersionNeeds.MarkWeak(new byte[100], Lib, New)).Message);
        var elf32 = (byte[])good.Clone(); elf32[4] = 1;
        Assert.Contains("64-bit", Assert.Throws<InvalidDataException>(() => ElfVersionNeeds.MarkWeak(elf32, Lib, New)).Message);
        var big = (byte[])good.Clone(); big[5] = 2;
        Assert.Contains("little-endian", Assert.Throws<InvalidDataException>(() => ElfVersionNeeds.MarkWeak(big, Lib, New)).Message);
        Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => ElfVersionNeeds.MarkWeak(good[..(good.Length - 100)], Lib, New)).Message);
    }

    static string PackageNativeDir => typeof(ElfVersionNeedsTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "TorchSharpNativeDir").Value!;

    /// <summary>TorchSharp 0.107's own library: GLIBCXX_3.4.32 is needed for std::ios_base_library_init() alone, which no
    /// relocation binds; marking it weak changes one byte. The package's file is only read.</summary>
    [Fact]
    public void TheRealLibLibTorchSharpNeedsItForOneUnboundSymbol()
    {
        var path = Path.Combine(PackageNativeDir, "libLibTorchSharp.so");
        Assert.True(File.Exists(path), $"{path} is missing: TorchSharp 0.107.0 not restored?");
        var original = File.ReadAllBytes(path);
        Assert.Contains((Lib, New, false), ElfVersionNeeds.Requirements(original));
        Assert.Equal([("_ZSt21ios_base_library_initv", 0)], ElfVersionNeeds.SymbolsOfVersion(original, Lib, New));
        var copy = (byte[])original.Clone();
        Assert.Equal(WeakVersionResult.Marked, ElfVersionNeeds.MarkWeak(copy, Lib, New));
        Assert.Single(Enumerable.Range(0, copy.Length), i => copy[i] != original[i]);

        // the build step patched this test's output copy exactly when this machine's libstdc++ lacks the version
        var system = ElfVersionNeeds.LoadedLibStdCxx();
        var output = Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "runtimes"), "libLibTorchSharp.so", SearchOption.AllDirectories).Single();
        bool systemHasIt = system is not null && ElfVersionNeeds.DefinedVersions(File.ReadAllBytes(system)).Contains(New);
        Assert.Equal(!systemHasIt, ElfVersionNeeds.Requirements(File.ReadAllBytes(output)).Contains((Lib, New, true)));
        Assert.Equal(original, File.ReadAllBytes(path));   // the NuGet cache is never written
    }
}
