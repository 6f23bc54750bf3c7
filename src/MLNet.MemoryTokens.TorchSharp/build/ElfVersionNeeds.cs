// The one place that edits an ELF shared object: mark a symbol-version requirement weak (VER_FLG_WEAK), so the dynamic
// loader accepts a system library that lacks that version. Used to load TorchSharp 0.107's libLibTorchSharp.so on
// distributions whose libstdc++ predates GLIBCXX_3.4.32 (Debian 12: 3.4.30); see docs/torchsharp.md.
//
// Compiled twice: into MLNet.MemoryTokens.TorchSharp (which defines MEMORYTOKENS_LIBRARY: the pure functions, for the runtime
// diagnostic and the unit tests) and, from this very file, by MSBuild's RoslynCodeTaskFactory (build/*.targets: the pure
// functions plus the task). So it is written for netstandard2.0: byte arrays and offsets, no spans.
#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace MLNet.MemoryTokens.TorchSharp.Native
{
    /// <summary>What <see cref="ElfVersionNeeds.MarkWeak"/> found and did.</summary>
    public enum WeakVersionResult
    {
        /// <summary>The requirement was strong and is now weak.</summary>
        Marked,
        /// <summary>The requirement was weak already: nothing changed.</summary>
        AlreadyWeak,
        /// <summary>The file does not require that version of that library: nothing changed.</summary>
        NotRequired,
    }

    /// <summary>Reads and edits the symbol-versioning sections of a little-endian ELF64 shared object (.gnu.version_r,
    /// .gnu.version_d, .gnu.version, .dynsym and the dynamic relocations): pure functions over the file's bytes.</summary>
    public static class ElfVersionNeeds
    {
        const uint ShtRela = 4, ShtDynsym = 11, ShtRel = 9, ShtVerdef = 0x6ffffffd, ShtVerneed = 0x6ffffffe, ShtVersym = 0x6fffffff;
        const ushort VerFlgWeak = 0x2;

        /// <summary>Marks the requirement of <paramref name="version"/> from <paramref name="library"/> (e.g. GLIBCXX_3.4.32 from
        /// libstdc++.so.6) weak, in place. Refuses (InvalidOperationException, naming the symbols) when any dynamic relocation
        /// binds a symbol of that version: the loader would then leave a reference unresolved, so only a requirement that
        /// nothing binds to may be relaxed.</summary>
        public static WeakVersionResult MarkWeak(byte[] elf, string library, string version)
        {
            var f = new ElfFile(elf);
            var need = f.FindNeed(library, version);
            if (need == null) return WeakVersionResult.NotRequired;
            var used = f.RelocatedSymbolsOfVersion(need.Value.Index);
            if (used.Count > 0)
                throw new InvalidOperationException($"{version} of {library} cannot be made optional: relocations bind {string.Join(", ", used)} to it.");
            ushort flags = f.U16(need.Value.FlagsOffset);
            if ((flags & VerFlgWeak) != 0) return WeakVersionResult.AlreadyWeak;
            flags |= VerFlgWeak;
            elf[need.Value.FlagsOffset] = (byte)flags;
            elf[need.Value.FlagsOffset + 1] = (byte)(flags >> 8);
            return WeakVersionResult.Marked;
        }

        /// <summary>Every (library, version, weak) requirement of the file, in file order.</summary>
        public static List<(string Library, string Version, bool Weak)> Requirements(byte[] elf)
        {
            var list = new List<(string, string, bool)>();
            foreach (var n in new ElfFile(elf).Needs()) list.Add((n.Library, n.Version, (n.Flags & VerFlgWeak) != 0));
            return list;
        }

        /// <summary>The versions a library defines (its .gnu.version_d names, e.g. GLIBCXX_3.4.30 in libstdc++.so.6).</summary>
        public static List<string> DefinedVersions(byte[] elf) => new ElfFile(elf).Definitions();

        /// <summary>The dynamic symbols bound to <paramref name="version"/> of <paramref name="library"/>, and how many relocations
        /// reference each (what <see cref="MarkWeak"/> checks before it relaxes anything).</summary>
        public static List<(string Symbol, int Relocations)> SymbolsOfVersion(byte[] elf, string library, string version)
        {
            var f = new ElfFile(elf);
            var need = f.FindNeed(library, version);
            var list = new List<(string, int)>();
            if (need == null) return list;
            var counts = f.RelocationCounts();
            foreach (var s in f.SymbolsWithVersion(need.Value.Index))
                list.Add((f.SymbolName(s), counts.TryGetValue(s, out var c) ? c : 0));
            return list;
        }

        /// <summary>The libstdc++.so.6 this process has loaded (from /proc/self/maps: the one the dynamic loader picked, so the
        /// one a .NET process on this machine gets), else the first of the usual paths that exists; null when none is found.</summary>
        public static string? LoadedLibStdCxx()
        {
            try
            {
                if (File.Exists("/proc/self/maps"))
                    foreach (var line in File.ReadAllLines("/proc/self/maps"))
                    {
                        int at = line.IndexOf('/');
                        if (at >= 0 && line.IndexOf("/libstdc++.so", StringComparison.Ordinal) >= 0) return line.Substring(at).Trim();
                    }
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
            foreach (var p in new[] { "/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/aarch64-linux-gnu/libstdc++.so.6",
                "/usr/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6", "/lib64/libstdc++.so.6" })
                if (File.Exists(p)) return p;
            return null;
        }

        /// <summary>The parts of an ELF64 little-endian file this needs: section headers and the versioning tables.</summary>
        sealed class ElfFile
        {
            readonly byte[] _b;
            readonly List<Section> _sections = new List<Section>();

            internal struct Section { public uint Type; public long Offset, Size, EntSize; public int Link; }
            internal struct Need { public string Library, Version; public ushort Flags, Index; public int FlagsOffset; }

            public ElfFile(byte[] bytes)
            {
                _b = bytes ?? throw new ArgumentNullException(nameof(bytes));
                if (bytes.Length < 64 || bytes[0] != 0x7f || bytes[1] != (byte)'E' || bytes[2] != (byte)'L' || bytes[3] != (byte)'F')
                    throw new InvalidDataException("Not an ELF file.");
                if (bytes[4] != 2) throw new InvalidDataException("Not a 64-bit ELF file (only ELF64 is supported).");
                if (bytes[5] != 1) throw new InvalidDataException("Not a little-endian ELF file (only little-endian is supported).");
                long shoff = (long)U64(0x28);
                int shentsize = U16(0x3A), shnum = U16(0x3C);
                if (shoff == 0 || shnum == 0) throw new InvalidDataException("The ELF file has no section headers.");
                if (shentsize < 64) throw new InvalidDataException($"Section header entries of {shentsize} bytes are too small.");
                Check(shoff, (long)shentsize * shnum, "section headers");
                for (int i = 0; i < shnum; i++)
                {
                    int h = (int)(shoff + (long)i * shentsize);
                    var s = new Section { Type = U32(h + 4), Offset = (long)U64(h + 24), Size = (long)U64(h + 32), Link = (int)U32(h + 40), EntSize = (long)U64(h + 56) };
                    if (s.Type != 8 /* NOBITS */) Check(s.Offset, s.Size, $"section {i}");
                    _sections.Add(s);
                }
            }

            void Check(long offset, long length, string what)
            {
                if (offset < 0 || length < 0 || offset + length > _b.Length) throw new InvalidDataException($"The ELF file is truncated: its {what} lie past its end.");
            }

            public ushort U16(long o) { Check(o, 2, "tables"); return (ushort)(_b[o] | _b[o + 1] << 8); }
            public uint U32(long o) { Check(o, 4, "tables"); return (uint)(_b[o] | _b[o + 1] << 8 | _b[o + 2] << 16 | _b[o + 3] << 24); }
            public ulong U64(long o) => U32(o) | (ulong)U32(o + 4) << 32;

            string Str(int strtabSection, uint offset)
            {
                if (strtabSection <= 0 || strtabSection >= _sections.Count) throw new InvalidDataException("A versioning table names no string table.");
                var s = _sections[strtabSection];
                if (offset >= s.Size) throw new InvalidDataException("A string lies outside its string table.");
                long start = s.Offset + offset, end = start;
                while (end < s.Offset + s.Size && _b[end] != 0) end++;
                return Encoding.ASCII.GetString(_b, (int)start, (int)(end - start));
            }

            int IndexOf(uint type)
            {
                for (int i = 0; i < _sections.Count; i++) if (_sections[i].Type == type) return i;
                return -1;
            }

            public List<Need> Needs()
            {
                var list = new List<Need>();
                int vi = IndexOf(ShtVerneed);
                if (vi < 0) return list;
                var sec = _sections[vi];
                long at = sec.Offset;
                for (int guard = 0; guard < 4096; guard++)
                {
                    Check(at, 16, ".gnu.version_r");
                    int cnt = U16(at + 2);
                    string file = Str(sec.Link, U32(at + 4));
                    long aux = at + U32(at + 8);
                    for (int k = 0; k < cnt; k++)
                    {
                        Check(aux, 16, ".gnu.version_r");
                        list.Add(new Need { Library = file, Version = Str(sec.Link, U32(aux + 8)), Flags = U16(aux + 4), Index = U16(aux + 6), FlagsOffset = (int)(aux + 4) });
                        uint next = U32(aux + 12);
                        if (next == 0) break;
                        aux += next;
                    }
                    uint vnNext = U32(at + 12);
                    if (vnNext == 0) return list;
                    at += vnNext;
                }
                throw new InvalidDataException(".gnu.version_r does not end.");
            }

            public Need? FindNeed(string library, string version)
            {
                foreach (var n in Needs())
                    if (n.Library == library && n.Version == version) return n;
                return null;
            }

            public List<string> Definitions()
            {
                var list = new List<string>();
                int di = IndexOf(ShtVerdef);
                if (di < 0) return list;
                var sec = _sections[di];
                long at = sec.Offset;
                for (int guard = 0; guard < 65536; guard++)
                {
                    Check(at, 20, ".gnu.version_d");
                    int cnt = U16(at + 6);
                    long aux = at + U32(at + 12);
                    if (cnt > 0) { Check(aux, 8, ".gnu.version_d"); list.Add(Str(sec.Link, U32(aux))); }   // the first aux names the version itself
                    uint next = U32(at + 16);
                    if (next == 0) return list;
                    at += next;
                }
                throw new InvalidDataException(".gnu.version_d does not end.");
            }

            /// <summary>Indices into .dynsym of the symbols whose .gnu.version entry is <paramref name="index"/>.</summary>
            public List<int> SymbolsWithVersion(ushort index)
            {
                var list = new List<int>();
                int vs = IndexOf(ShtVersym);
                if (vs < 0) return list;
                var sec = _sections[vs];
                for (int i = 0; i < sec.Size / 2; i++)
                    if ((U16(sec.Offset + 2L * i) & 0x7fff) == index) list.Add(i);
                return list;
            }

            public string SymbolName(int symbol)
            {
                int ds = IndexOf(ShtDynsym);
                var sec = _sections[ds];
                long entry = sec.Offset + (long)symbol * (sec.EntSize == 0 ? 24 : sec.EntSize);
                return Str(sec.Link, U32(entry));
            }

            /// <summary>Per .dynsym index, how many relocations (REL or RELA sections over .dynsym) reference it.</summary>
            public Dictionary<int, int> RelocationCounts()
            {
                var counts = new Dictionary<int, int>();
                int ds = IndexOf(ShtDynsym);
                for (int i = 0; i < _sections.Count; i++)
                {
                    var s = _sections[i];
                    if ((s.Type != ShtRela && s.Type != ShtRel) || s.Link != ds) continue;
                    long ent = s.EntSize != 0 ? s.EntSize : s.Type == ShtRela ? 24 : 16;
                    for (long at = s.Offset; at + ent <= s.Offset + s.Size; at += ent)
                    {
                        int sym = (int)(U64(at + 8) >> 32);
                        if (sym != 0) counts[sym] = counts.TryGetValue(sym, out var c) ? c + 1 : 1;
                    }
                }
                return counts;
            }

            public List<string> RelocatedSymbolsOfVersion(ushort index)
            {
                var counts = RelocationCounts();
                var used = new List<string>();
                foreach (var s in SymbolsWithVersion(index))
                    if (counts.ContainsKey(s)) used.Add(SymbolName(s));
                return used;
            }
        }
    }

#if !MEMORYTOKENS_LIBRARY
    /// <summary>MSBuild task (build/MLNet.MemoryTokens.TorchSharp.targets): rewrites each given libLibTorchSharp.so with the
    /// GLIBCXX_3.4.32 requirement marked weak — into a temporary file that then replaces the output copy, so a hard link into
    /// the NuGet cache is broken rather than written through.</summary>
    public sealed class MarkLibStdCxxVersionWeak : Microsoft.Build.Utilities.Task
    {
        [Microsoft.Build.Framework.Required] public Microsoft.Build.Framework.ITaskItem[] Files { get; set; } = Array.Empty<Microsoft.Build.Framework.ITaskItem>();
        /// <summary>auto: only when the libstdc++ this build runs with lacks the version; true: always.</summary>
        public string Mode { get; set; } = "auto";
        public string Version { get; set; } = "GLIBCXX_3.4.32";

        public override bool Execute()
        {
            if (Mode == "auto")
            {
                var system = ElfVersionNeeds.LoadedLibStdCxx();
                if (system == null) { Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low, "No libstdc++.so.6 found: not a glibc system, nothing to patch."); return true; }
                if (ElfVersionNeeds.DefinedVersions(File.ReadAllBytes(system)).Contains(Version))
                {
                    Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low, $"{system} defines {Version}: libLibTorchSharp.so loads as shipped.");
                    return true;
                }
            }
            foreach (var item in Files)
            {
                string path = item.ItemSpec;
                try
                {
                    var bytes = File.ReadAllBytes(path);
                    var result = ElfVersionNeeds.MarkWeak(bytes, "libstdc++.so.6", Version);
                    if (result != WeakVersionResult.Marked) { Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low, $"{path}: {result}."); continue; }
                    // a new file renamed over the output copy: if the copy was a hard link into the NuGet cache, the cache keeps its file
                    string temp = path + ".weak-" + Guid.NewGuid().ToString("N").Substring(0, 8);
                    File.WriteAllBytes(temp, bytes);
                    File.Replace(temp, path, null);
                    Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Normal, $"{path}: marked the {Version} requirement weak (this system's libstdc++ predates it).");
                }
                catch (Exception e) when (e is IOException || e is InvalidDataException || e is InvalidOperationException || e is UnauthorizedAccessException)
                {
                    Log.LogError($"{path}: could not mark {Version} weak: {e.Message}");
                    return false;
                }
            }
            return !Log.HasLoggedErrors;
        }
    }
#endif
}
