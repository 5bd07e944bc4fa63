// MSBuild inline task (compiled by RoslynCodeTaskFactory). Reads an ELF64 little-endian shared library,
// walks its .gnu.version_r (SHT_GNU_verneed) entries for libstdc++.so.6 and sets VER_FLG_WEAK on each
// GLIBCXX_/CXXABI_ version that the system's libstdc++ does not define. Nothing else in the file changes.
using System;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public class WeakenMissingLibStdCxxVersions : Task
{
    [Required] public ITaskItem[] Files { get; set; }

    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlagWeak = 0x2;

    static readonly string[] LibStdCxxCandidates =
    {
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
        "/usr/lib64/libstdc++.so.6", "/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6",
        "/usr/lib/aarch64-linux-gnu/libstdc++.so.6",
    };

    public override bool Execute()
    {
        string systemLib = Array.Find(LibStdCxxCandidates, File.Exists);
        if (systemLib == null)
        {
            Log.LogMessage(MessageImportance.Low, "No system libstdc++.so.6 found; TorchSharp's native library left as is.");
            return true;
        }
        byte[] system = File.ReadAllBytes(systemLib);
        foreach (var item in Files)
        {
            try { Patch(item.ItemSpec, system); }
            catch (Exception e) { Log.LogWarning("Could not check {0} for libstdc++ version needs: {1}", item.ItemSpec, e.Message); }
        }
        return !Log.HasLoggedErrors;
    }

    void Patch(string path, byte[] systemLib)
    {
        byte[] elf = File.ReadAllBytes(path);
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[4] != 2 || elf[5] != 1) return; // ELF64 LE only
        long shoff = BitConverter.ToInt64(elf, 0x28);
        int shentsize = BitConverter.ToUInt16(elf, 0x3A), shnum = BitConverter.ToUInt16(elf, 0x3C);
        bool changed = false;
        for (int s = 0; s < shnum; s++)
        {
            long sh = shoff + (long)s * shentsize;
            if (BitConverter.ToUInt32(elf, (int)sh + 4) != ShtGnuVerneed) continue;
            long offset = BitConverter.ToInt64(elf, (int)sh + 0x18);
            int link = (int)BitConverter.ToUInt32(elf, (int)sh + 0x28);
            long strtab = BitConverter.ToInt64(elf, (int)(shoff + (long)link * shentsize) + 0x18);
            long need = offset;
            while (true)
            {
                int count = BitConverter.ToUInt16(elf, (int)need + 2);
                string file = CString(elf, strtab + BitConverter.ToUInt32(elf, (int)need + 4));
                long aux = need + BitConverter.ToUInt32(elf, (int)need + 8);
                for (int a = 0; a < count; a++)
                {
                    string name = CString(elf, strtab + BitConverter.ToUInt32(elf, (int)aux + 8));
                    int flagsAt = (int)aux + 4;
                    ushort flags = BitConverter.ToUInt16(elf, flagsAt);
                    bool cxx = file.StartsWith("libstdc++", StringComparison.Ordinal)
                               && (name.StartsWith("GLIBCXX_", StringComparison.Ordinal) || name.StartsWith("CXXABI_", StringComparison.Ordinal));
                    if (cxx && (flags & VerFlagWeak) == 0 && !Defines(systemLib, name))
                    {
                        BitConverter.GetBytes((ushort)(flags | VerFlagWeak)).CopyTo(elf, flagsAt);
                        Log.LogMessage(MessageImportance.High, "Taming.ML: marked {0} weak in {1} (the system libstdc++ lacks it).", name, path);
                        changed = true;
                    }
                    uint nextAux = BitConverter.ToUInt32(elf, (int)aux + 12);
                    if (nextAux == 0) break;
                    aux += nextAux;
                }
                uint next = BitConverter.ToUInt32(elf, (int)need + 12);
                if (next == 0) break;
                need += next;
            }
        }
        if (changed) File.WriteAllBytes(path, elf);
    }

    static string CString(byte[] bytes, long at)
    {
        int end = Array.IndexOf(bytes, (byte)0, (int)at);
        return Encoding.ASCII.GetString(bytes, (int)at, end - (int)at);
    }

    // A version is defined when its name appears NUL-terminated in the library (its version string table).
    static bool Defines(byte[] lib, string version)
    {
        byte[] needle = Encoding.ASCII.GetBytes(version + "\0");
        for (int i = 0; i <= lib.Length - needle.Length; i++)
        {
            if (lib[i] != needle[0]) continue;
            int k = 1;
            while (k < needle.Length && lib[i + k] == needle[k]) k++;
            if (k == needle.Length && (i == 0 || lib[i - 1] == 0)) return true;
        }
        return false;
    }
}
