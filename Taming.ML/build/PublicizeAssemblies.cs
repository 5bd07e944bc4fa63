// MSBuild inline task (compiled by RoslynCodeTaskFactory): writes copies of the given assemblies with every
// type, method and field public. Skips the work when the copy is newer than its source.
using System.IO;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
using Mono.Cecil;

public class PublicizeAssemblies : Task
{
    [Required] public ITaskItem[] Assemblies { get; set; }
    [Required] public string OutputDirectory { get; set; }

    public override bool Execute()
    {
        Directory.CreateDirectory(OutputDirectory);
        foreach (var item in Assemblies)
        {
            string source = item.GetMetadata("FullPath");
            string target = Path.Combine(OutputDirectory, Path.GetFileName(source));
            if (File.Exists(target) && File.GetLastWriteTimeUtc(target) >= File.GetLastWriteTimeUtc(source)) continue;
            var resolver = new DefaultAssemblyResolver();
            resolver.AddSearchDirectory(Path.GetDirectoryName(source));
            using (var assembly = AssemblyDefinition.ReadAssembly(source, new ReaderParameters { AssemblyResolver = resolver }))
            {
                foreach (var type in assembly.MainModule.GetTypes()) Publicize(type);
                assembly.Write(target);
            }
            Log.LogMessage(MessageImportance.Low, "Publicized {0} -> {1}", source, target);
        }
        return true;
    }

    static void Publicize(TypeDefinition type)
    {
        if (type.IsNested) type.IsNestedPublic = true; else type.IsPublic = true;
        foreach (var method in type.Methods) method.IsPublic = true;
        foreach (var field in type.Fields)
        {
            // An event's backing field shares its name; making it public would make the name ambiguous.
            bool eventBacking = false;
            foreach (var e in type.Events) if (e.Name == field.Name) eventBacking = true;
            if (!eventBacking) field.IsPublic = true;
        }
    }
}
