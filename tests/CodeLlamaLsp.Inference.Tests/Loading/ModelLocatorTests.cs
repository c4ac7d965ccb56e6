// Resolves Hugging Face model ids against a fake hub cache laid out like huggingface_hub's
// (refs/<revision> holding a commit, snapshots/<commit>/ with symlinks into blobs/).
using CodeLlamaLsp.Inference.Loading;

namespace CodeLlamaLsp.Inference.Tests.Loading;

[NonParallelizable]
public class ModelLocatorTests
{
    private const string MainCommit = "0123456789abcdef0123456789abcdef01234567";
    private const string BranchCommit = "fedcba9876543210fedcba9876543210fedcba98";
    private static readonly string[] Variables = ["HF_HOME", "HF_HUB_CACHE", "XDG_CACHE_HOME"];
    private readonly Dictionary<string, string?> saved = [];
    private TempFolder home = null!;

    [SetUp]
    public void SetUp()
    {
        foreach (string name in Variables)
        {
            saved[name] = Environment.GetEnvironmentVariable(name);
            Environment.SetEnvironmentVariable(name, null);
        }

        home = new TempFolder();
        Environment.SetEnvironmentVariable("HF_HOME", home.Path);
    }

    [TearDown]
    public void TearDown()
    {
        foreach (var (name, value) in saved)
        {
            Environment.SetEnvironmentVariable(name, value);
        }

        home.Dispose();
    }

    [Test]
    public void Model_id_resolves_main_through_refs_to_the_snapshot_and_loads()
    {
        string snapshot = AddSnapshot(Path.Combine(home.Path, "hub"), "TheBloke/CodeLlama-Tiny-GPTQ", "main", MainCommit, Fixtures.Tiny);

        using var model = ModelLoader.Load("TheBloke/CodeLlama-Tiny-GPTQ");

        Assert.Multiple(() =>
        {
            Assert.That(model.Directory, Is.EqualTo(snapshot));
            Assert.That(model.Name, Is.EqualTo("TheBloke/CodeLlama-Tiny-GPTQ"));
            Assert.That(model.Config.VocabSize, Is.EqualTo(32000));
            Assert.That(model.TokenizerPath, Is.EqualTo(Path.Combine(snapshot, "tokenizer.model")));
        });
    }

    [Test]
    public void Branch_revision_picks_its_own_snapshot()
    {
        string hub = Path.Combine(home.Path, "hub");
        AddSnapshot(hub, "TheBloke/CodeLlama-Mini-GPTQ", "main", MainCommit, Fixtures.Mini4Bit);
        AddSnapshot(hub, "TheBloke/CodeLlama-Mini-GPTQ", "gptq-8bit--1g-actorder_True", BranchCommit, Fixtures.Mini8Bit);

        using var model = ModelLoader.Load("TheBloke/CodeLlama-Mini-GPTQ", "gptq-8bit--1g-actorder_True");

        Assert.Multiple(() =>
        {
            Assert.That(model.Weights.Quantization!.Bits, Is.EqualTo(8));
            Assert.That(model.Name, Is.EqualTo("TheBloke/CodeLlama-Mini-GPTQ@gptq-8bit--1g-actorder_True"));
        });
    }

    [Test]
    public void Commit_hash_revision_goes_straight_to_snapshots()
    {
        string hub = Path.Combine(home.Path, "hub");
        AddSnapshot(hub, "org/mini", "main", MainCommit, Fixtures.Mini4Bit);
        string pinned = AddSnapshot(hub, "org/mini", "other", BranchCommit, Fixtures.Mini8Bit);

        var location = ModelLocator.Resolve("org/mini", BranchCommit);

        Assert.That(location.Directory, Is.EqualTo(pinned));
    }

    [Test]
    public void Hub_cache_variable_wins_over_hf_home()
    {
        using var other = new TempFolder();
        Environment.SetEnvironmentVariable("HF_HUB_CACHE", other.Path);
        AddSnapshot(Path.Combine(home.Path, "hub"), "org/mini", "main", MainCommit, Fixtures.Mini4Bit);
        string preferred = AddSnapshot(other.Path, "org/mini", "main", BranchCommit, Fixtures.Mini8Bit);

        Assert.That(ModelLocator.Resolve("org/mini").Directory, Is.EqualTo(preferred));
    }

    [Test]
    public void Missing_model_lists_where_it_looked()
    {
        var error = Assert.Throws<ModelLoadException>(() => ModelLocator.Resolve("org/absent", "gptq-4bit-32g-actorder_True"));

        Assert.Multiple(() =>
        {
            Assert.That(error!.Message, Does.Contain("'org/absent'").And.Contain("revision 'gptq-4bit-32g-actorder_True'"));
            Assert.That(error.Message, Does.Contain(Path.Combine(home.Path, "hub", "models--org--absent", "refs", "gptq-4bit-32g-actorder_True")));
            Assert.That(error.Message, Does.Contain("huggingface-cli download org/absent --revision gptq-4bit-32g-actorder_True"));
        });
    }

    [Test]
    public void Missing_revision_of_a_cached_model_is_not_found()
    {
        AddSnapshot(Path.Combine(home.Path, "hub"), "org/mini", "main", MainCommit, Fixtures.Mini4Bit);

        Assert.That(() => ModelLocator.Resolve("org/mini", "gptq-8bit-128g-actorder_True"), Throws.TypeOf<ModelLoadException>().With.Message.Contains("refs"));
    }

    [Test]
    public void Path_that_is_neither_folder_nor_model_id()
    {
        Assert.That(() => ModelLocator.Resolve("/no/such/folder"), Throws.TypeOf<ModelLoadException>().With.Message.Contains("no such folder"));
    }

    [Test]
    public void Folder_path_wins_and_is_named_after_the_folder()
    {
        var location = ModelLocator.Resolve(Fixtures.Path(Fixtures.Mini8Bit) + Path.DirectorySeparatorChar);

        Assert.That(location.Name, Is.EqualTo(Fixtures.Mini8Bit));
    }

    [TestCase("../../../../../../../../etc/passwd")]
    [TestCase("/etc/passwd")]
    [TestCase("main/../../../secret")]
    [TestCase("..")]
    [TestCase(".hidden")]
    [TestCase("main.lock")]
    [TestCase("a//b")]
    [TestCase("main\\..\\x")]
    [TestCase("ma in")]
    [TestCase("@{-1}")]
    public void Revision_that_is_not_a_git_ref_name_is_refused_before_any_file_is_read(string revision)
    {
        Assert.That(() => ModelLocator.Resolve("org/name", revision), Throws.TypeOf<ModelLoadException>().With.Message.Contains("not a valid branch, tag or commit name"));
    }

    [TestCase("main")]
    [TestCase("gptq-4bit-32g-actOrder_True")]
    [TestCase("refs/pr/1")]
    [TestCase("v1.0")]
    public void Branch_tag_and_pr_names_are_valid_revisions(string revision)
    {
        Assert.That(ModelLocator.RevisionProblem(revision), Is.Null);
    }

    [TestCase("org/a..b")]
    [TestCase("org/a--b")]
    [TestCase("../org")]
    public void Model_id_with_dots_or_double_dashes_is_not_a_model_id(string model)
    {
        Assert.That(() => ModelLocator.Resolve(model), Throws.TypeOf<ModelLoadException>().With.Message.Contains("not a Hugging Face model id"));
    }

    [Test]
    public void A_ref_that_does_not_hold_a_commit_is_reported_by_path_never_by_content()
    {
        const string Secret = "root:x:0:0:secret-line-that-must-not-be-quoted";
        string refs = Path.Combine(home.Path, "hub", "models--org--name", "refs");
        Directory.CreateDirectory(refs);
        File.WriteAllText(Path.Combine(refs, "main"), Secret);

        var error = Assert.Throws<ModelLoadException>(() => ModelLocator.Resolve("org/name"))!;

        Assert.That(error.Message, Does.Contain(Path.Combine(refs, "main")).And.Not.Contain("secret-line"));
    }

    [Test]
    public void A_ref_linked_to_an_endless_device_is_refused_at_its_size_cap()
    {
        string refs = Path.Combine(home.Path, "hub", "models--org--name", "refs");
        Directory.CreateDirectory(refs);
        File.CreateSymbolicLink(Path.Combine(refs, "main"), "/dev/zero");
        long before = GC.GetAllocatedBytesForCurrentThread();

        Assert.That(() => ModelLocator.Resolve("org/name"), Throws.TypeOf<ModelLoadException>().With.Message.Contains("limit"));
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.LessThan(1 << 20), "a bounded read, not the whole device");
    }

    // The hub stores each file once under blobs/ and links it from every snapshot that has it.
    private static string AddSnapshot(string hub, string modelId, string revision, string commit, string fixture)
    {
        string repo = Path.Combine(hub, "models--" + modelId.Replace("/", "--", StringComparison.Ordinal));
        string snapshot = Path.Combine(repo, "snapshots", commit);
        string blobs = Path.Combine(repo, "blobs");
        Directory.CreateDirectory(snapshot);
        Directory.CreateDirectory(blobs);
        Directory.CreateDirectory(Path.Combine(repo, "refs"));
        File.WriteAllText(Path.Combine(repo, "refs", revision), commit);
        foreach (string file in Directory.GetFiles(Fixtures.Path(fixture)))
        {
            string blob = Path.Combine(blobs, commit[..8] + "-" + Path.GetFileName(file));
            File.Copy(file, blob);
            File.CreateSymbolicLink(Path.Combine(snapshot, Path.GetFileName(file)), Path.Combine("..", "..", "blobs", Path.GetFileName(blob)));
        }

        return snapshot;
    }
}
