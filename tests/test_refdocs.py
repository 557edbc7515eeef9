"""The reference pages in docs/reference are what tools/refdocs.py generates from the code today."""

from __future__ import annotations

from tools import refdocs


def test_the_committed_reference_pages_are_up_to_date():
    rendered = refdocs.pages()
    committed = {p.name: p.read_text(encoding="utf-8") for p in refdocs.OUT_DIR.glob("*.md")}
    stale = sorted(
        name for name in rendered.keys() | committed.keys() if rendered.get(name) != committed.get(name)
    )
    assert stale == [], f"stale reference pages {stale}: run `make docs` and commit docs/reference"


def test_every_component_has_a_page_listing_every_field_of_its_args():
    pages = refdocs.pages()
    for component in refdocs.components():
        page = pages[f"{component.__name__}.md"]
        args = refdocs.args_type(component)
        fields = [] if args is None else [f.name for f in refdocs.dataclasses.fields(args) if f.init]
        assert all(f"| `{name}` |" in page for name in fields), component.__name__
    assert {"InferenceService.md", "TrainingJob.md", "BatchInferenceJob.md", "EksCluster.md"} <= set(pages)


def test_a_field_meaning_comes_from_its_comment_or_the_docstring_sentence_naming_it():
    from aiplatform.workloads import InferenceServiceArgs, ModelSource

    assert refdocs.field_meaning(ModelSource, "prefix").startswith("the model's prefix in the bucket")
    assert "``replicas`` is used only without ``autoscaling``" in refdocs.field_meaning(
        InferenceServiceArgs, "replicas"
    )
    assert "Prometheus operator release" in refdocs.field_meaning(InferenceServiceArgs, "metrics_depends_on")
    assert refdocs.field_meaning(InferenceServiceArgs, "image").startswith(
        "the main container's image"
    )  # inherited


def test_every_module_defining_a_component_has_pages_and_the_layer_order_names_no_other():
    import pkgutil

    import aiplatform

    defining = set()
    for info in pkgutil.walk_packages(aiplatform.__path__, prefix="aiplatform."):
        if info.name.startswith("aiplatform.plan"):
            continue  # the offline plan: no components, and its __main__ runs a plan when imported
        module = refdocs.importlib.import_module(info.name)
        if any(
            issubclass(cls, refdocs.pulumi.ComponentResource) and cls.__module__ == module.__name__
            for _, cls in refdocs.inspect.getmembers(module, refdocs.inspect.isclass)
        ):
            defining.add(info.name.removeprefix("aiplatform."))
    assert defining == set(refdocs.component_modules())
    assert set(refdocs.LAYER_ORDER) <= defining
    assert refdocs.component_modules()[-1] == "platform"


def test_the_comments_trailing_other_fields_are_never_a_fields_meaning():
    from aiplatform.workloads import WorkloadArgs

    meaning = refdocs.field_meaning(WorkloadArgs, "secret_env")
    assert meaning == "``(ENV_NAME, secret_name, key)``: a key of a Secret made elsewhere, in the environment"
    assert "GPUs per pod" not in meaning and "plain environment variables" not in meaning


def test_no_argument_row_is_undocumented():
    pages = refdocs.pages()
    rows = [
        line for content in pages.values() for line in content.splitlines() if refdocs.UNDOCUMENTED in line
    ]
    assert rows == [], "say what each field does where it is declared (a comment on or above it)"


def test_the_platform_outputs_page_lists_every_exported_name_and_every_method():
    from aiplatform.outputs import KUBECONFIG, PlatformOutputs

    page = refdocs.pages()["PlatformOutputs.md"]
    assert all(f"| `{name}` |" in page for name in PlatformOutputs.exported_names() - {KUBECONFIG})
    for method in (
        "placement(node_group: str)",
        "route(host: pulumi.Input[str]",
        "model_source(prefix: str",
        "metric(name: str)",
    ):
        assert f"| `{method}" in page
    assert "[PlatformOutputs](PlatformOutputs.md)" in refdocs.pages()["README.md"]


def test_a_components_page_lists_its_outputs_and_an_enums_values():
    pages = refdocs.pages()
    assert "## Outputs" in pages["InferenceService.md"] and "| `deployment` |" in pages["InferenceService.md"]
    assert "One of `system`, `gpu`." in pages["NodeGroups.md"]
    assert "One of `irsa`, `pod-identity`." in pages["EksCluster.md"]
