//! The rule set: which imported globals are safe, dangerous, or unknown.
//!
//! Rules are data (`rules/*.toml`, embedded at build time; more with [`RuleSet::add_file`]). The
//! format is documented in `docs/rules.md`. Three kinds of rule exist:
//!
//! * **allow**: exact `(module, name)` pairs that legitimate model files use and that cannot run
//!   code (torch's `weights_only` allowlist, numpy array reconstruction, …);
//! * **deny**: exact pairs, whole modules (with every submodule) and attribute names that reach
//!   code execution, the file system, the network, the import machinery or a nested loader;
//! * **anomaly**: facts about a file that are not about a global (malformed stream, exceeded
//!   budget, odd container); the scanner looks them up by id (see [`ids`]).
//!
//! # How a global is judged
//!
//! [`RuleSet::judge`] receives `(module, name)` as the unpickler resolved them and:
//!
//! 1. applies CPython's protocol 0–2 renaming ([`crate::names::fix_imports`]) unconditionally and
//!    judges both the renamed and the original pair (the more severe answer wins);
//! 2. looks for deny matches on the dotted path `module.name`. A pattern matches a run of
//!    consecutive path components that starts either at the first component (the imported
//!    module) or at any component of `name` (at protocol ≥ 4 each dotted step is a `getattr`,
//!    and any step can yield a module object: `torch.serialization` + `os.system` reaches
//!    `os.system`). Whole-module patterns match the module and everything below it; exact
//!    patterns match the object and everything reached through it (`code.InteractiveInterpreter`
//!    covers `code.InteractiveInterpreter.runcode`). Attribute patterns (`__globals__`, …) match
//!    any component anywhere. Module aliases (`posix`/`nt` → `os`, `_pickle` → `pickle`, …) are
//!    data in `rules/aliases.toml`. The most severe match wins; among equals the longest, then
//!    the earliest rule;
//! 3. with no deny match, flags empty or non-identifier components (rules PS921, PS922);
//! 4. otherwise answers [`Judgement::Safe`] only if the exact pair (module spelled canonically)
//!    is allowlisted; everything else is [`Judgement::Unknown`].
//!
//! Deny beats allow. All lookups are hash-map lookups built once per rule set.

mod builtin;
pub mod doc;
mod file;
mod hash;

use crate::finding::{Severity, Usage};
use crate::names::{fix_imports_cow, is_identifier};
use hash::{FastMap, FastSet};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The registry of every rule id the code emits by id (anomalies and the unknown-global rule):
/// one name per id, used by the scanner, the containers and the policies alike. `tests/it/rules.rs`
/// checks it both ways against the rule files: every id here has exactly one anomaly rule, and
/// every anomaly rule is emitted (is here).
pub mod ids {
    /// More findings of the same kinds than are listed (a count, info).
    pub const NOT_LISTED: &str = "PS000";
    /// Import of a global on neither list.
    pub const UNKNOWN_GLOBAL: &str = "PS001";
    /// The pickle stream does not decode.
    pub const MALFORMED: &str = "PS900";
    /// The pickle stream ends before STOP.
    pub const TRUNCATED: &str = "PS901";
    /// An op, node, memo, nesting or output budget was exceeded.
    pub const BUDGET: &str = "PS902";
    /// EXT1/EXT2/EXT4: an import through the copyreg extension registry.
    pub const EXTENSION: &str = "PS903";
    /// STACK_GLOBAL whose operands are not literal strings.
    pub const DYNAMIC_GLOBAL: &str = "PS904";
    /// A persistent id the host loader would not accept.
    pub const PERSISTENT_ID: &str = "PS905";
    /// Bytes after the last STOP that are not another pickle.
    pub const TRAILING_DATA: &str = "PS906";
    /// FRAME opcode used inconsistently.
    pub const FRAME: &str = "PS907";
    /// NEXT_BUFFER: an out-of-band buffer.
    pub const OUT_OF_BAND: &str = "PS908";
    /// A zip container oddity.
    pub const ZIP_ANOMALY: &str = "PS910";
    /// An encrypted or unsupported (compression method) archive member.
    pub const UNSUPPORTED_MEMBER: &str = "PS911";
    /// A recognised format that cannot be scanned.
    pub const UNSCANNABLE: &str = "PS912";
    /// Content that is no known format, under a name that claims a model format.
    pub const UNRECOGNISED: &str = "PS913";
    /// TorchScript code that could not be read.
    pub const TORCHSCRIPT_CODE: &str = "PS914";
    /// Containers nested deeper than the limit.
    pub const NESTED_DEPTH: &str = "PS915";
    /// A decompression budget was exceeded.
    pub const DECOMPRESSION_BUDGET: &str = "PS916";
    /// An invalid safetensors file.
    pub const SAFETENSORS_INVALID: &str = "PS917";
    /// An invalid GGUF file.
    pub const GGUF_INVALID: &str = "PS918";
    /// The file could not be read.
    pub const IO_ERROR: &str = "PS919";
    /// An invalid `.npy` file.
    pub const NPY_INVALID: &str = "PS920";
    /// A global whose module or name has an empty component.
    pub const EMPTY_GLOBAL_NAME: &str = "PS921";
    /// A global whose module or name has a component that is not an identifier.
    pub const NON_IDENTIFIER_GLOBAL_NAME: &str = "PS922";
    /// A container method on an allowlisted object that is not a container.
    pub const METHOD_ON_ALLOWED: &str = "PS923";
    /// BUILD on an imported global itself.
    pub const STATE_ON_GLOBAL: &str = "PS924";
    /// TorchScript code that calls a file-system operator.
    pub const TORCHSCRIPT_FILE_ACCESS: &str = "PS940";
    /// TorchScript code that uses operators or classes of a native library torch does not ship.
    pub const TORCHSCRIPT_FOREIGN_OPERATOR: &str = "PS941";
    /// A joblib < 0.10 companion file not scanned with the dump.
    pub const JOBLIB_COMPANION: &str = "PS942";
    /// A joblib < 0.10 companion file name that leaves the dump's folder.
    pub const JOBLIB_COMPANION_OUTSIDE: &str = "PS943";
    /// A global that torch's `weights_only` allowlist does not contain (policy).
    pub const WEIGHTS_ONLY_GLOBAL: &str = "PS950";
    /// `torch.load(weights_only=True)` fails for a reason no allowlisting fixes (policy).
    pub const WEIGHTS_ONLY_REJECTED: &str = "PS951";
    /// A suppression that matched no finding (policy).
    pub const UNUSED_SUPPRESSION: &str = "PS958";
    /// Model formats other than pickles (`rules/formats.toml`).
    /// Attribute or item access to a name starting with `_`, however spelt.
    pub const TEMPLATE_DUNDER: &str = "PS960";
    /// A Jinja/Flask global walked to modules, or a process-running attribute.
    pub const TEMPLATE_GLOBAL_WALK: &str = "PS961";
    /// Something the analysis cannot vouch for.
    pub const TEMPLATE_UNRESOLVED: &str = "PS962";
    /// The template does not parse or exceeds a limit.
    pub const TEMPLATE_INVALID: &str = "PS963";
    /// External data outside the model's folder.
    pub const ONNX_EXTERNAL_ESCAPE: &str = "PS965";
    /// External data that cannot be verified.
    pub const ONNX_EXTERNAL_UNVERIFIED: &str = "PS966";
    /// An operator domain that needs a custom-op library.
    pub const ONNX_CUSTOM_DOMAIN: &str = "PS967";
    /// onnxruntime's Python operator.
    pub const ONNX_PYTHON_OP: &str = "PS968";
    /// The model does not decode or exceeds a limit.
    pub const ONNX_INVALID: &str = "PS969";
    /// External entity, parameter entity or foreign external DTD.
    pub const PMML_EXTERNAL_ENTITY: &str = "PS970";
    /// Entity expansion beyond the limits.
    pub const PMML_ENTITY_EXPANSION: &str = "PS971";
    /// Not well-formed, undeclared entity, or a limit.
    pub const PMML_INVALID: &str = "PS972";
    /// Code-like extension content.
    pub const PMML_SCRIPT_EXTENSION: &str = "PS973";
    /// Rule id of an invalid file.
    pub const GGML_INVALID: &str = "PS975";
    /// Rule id of a schema that cannot be read or holds refused node shapes.
    pub const SKOPS_INVALID: &str = "PS976";
    /// Rule id of a config that loads repository code.
    pub const HF_REMOTE_CODE: &str = "PS978";
    /// Lambda bytecode that does not decode or reaches names the scan does not know.
    pub const KERAS_LAMBDA: &str = "PS980";
    /// Lambda bytecode that reaches code execution, files, processes or Python internals.
    pub const KERAS_LAMBDA_DANGEROUS: &str = "PS984";
    /// A reference Keras resolves to something that runs code or touches files.
    pub const KERAS_DANGEROUS_REFERENCE: &str = "PS981";
    /// A reference outside Keras that needs custom objects, or cannot be read.
    pub const KERAS_UNRESOLVED: &str = "PS982";
    /// A layer that reads a file or URL named by the config.
    pub const KERAS_EXTERNAL_RESOURCE: &str = "PS983";
    /// An HDF5 reference to a file outside the model's folder.
    pub const HDF5_EXTERNAL_ESCAPE: &str = "PS985";
    /// An HDF5 reference to another file beside the model.
    pub const HDF5_EXTERNAL_REFERENCE: &str = "PS986";
    /// An HDF5 file that cannot be read whole.
    pub const HDF5_INVALID: &str = "PS987";
    /// A SavedModel op that runs Python or touches files.
    pub const TF_DANGEROUS_OP: &str = "PS990";
    /// A SavedModel file that does not decode.
    pub const TF_INVALID: &str = "PS991";

    /// Every id the scanner emits, each an anomaly rule of the built-in rule files.
    pub const ALL: &[&str] = &[
        NOT_LISTED,
        UNKNOWN_GLOBAL,
        MALFORMED,
        TRUNCATED,
        BUDGET,
        EXTENSION,
        DYNAMIC_GLOBAL,
        PERSISTENT_ID,
        TRAILING_DATA,
        FRAME,
        OUT_OF_BAND,
        ZIP_ANOMALY,
        UNSUPPORTED_MEMBER,
        UNSCANNABLE,
        UNRECOGNISED,
        TORCHSCRIPT_CODE,
        NESTED_DEPTH,
        DECOMPRESSION_BUDGET,
        SAFETENSORS_INVALID,
        GGUF_INVALID,
        IO_ERROR,
        NPY_INVALID,
        EMPTY_GLOBAL_NAME,
        NON_IDENTIFIER_GLOBAL_NAME,
        METHOD_ON_ALLOWED,
        STATE_ON_GLOBAL,
        TORCHSCRIPT_FILE_ACCESS,
        TORCHSCRIPT_FOREIGN_OPERATOR,
        JOBLIB_COMPANION,
        JOBLIB_COMPANION_OUTSIDE,
        TEMPLATE_DUNDER,
        TEMPLATE_GLOBAL_WALK,
        TEMPLATE_UNRESOLVED,
        TEMPLATE_INVALID,
        ONNX_EXTERNAL_ESCAPE,
        ONNX_EXTERNAL_UNVERIFIED,
        ONNX_CUSTOM_DOMAIN,
        ONNX_PYTHON_OP,
        ONNX_INVALID,
        PMML_EXTERNAL_ENTITY,
        PMML_ENTITY_EXPANSION,
        PMML_INVALID,
        PMML_SCRIPT_EXTENSION,
        GGML_INVALID,
        SKOPS_INVALID,
        HF_REMOTE_CODE,
        KERAS_LAMBDA,
        KERAS_DANGEROUS_REFERENCE,
        KERAS_UNRESOLVED,
        KERAS_EXTERNAL_RESOURCE,
        KERAS_LAMBDA_DANGEROUS,
        HDF5_EXTERNAL_ESCAPE,
        HDF5_EXTERNAL_REFERENCE,
        HDF5_INVALID,
        TF_DANGEROUS_OP,
        TF_INVALID,
    ];

    /// Every id the policies emit, each an anomaly rule of `rules/policy/anomalies.toml`.
    pub const POLICY: &[&str] = &[
        WEIGHTS_ONLY_GLOBAL,
        WEIGHTS_ONLY_REJECTED,
        UNUSED_SUPPRESSION,
    ];
}

/// What a rule does with the globals it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Known-safe: no finding.
    Allow,
    /// Known-dangerous: a finding with the rule's severity.
    Deny,
    /// Not about globals: describes a fact about the file (malformed stream, container oddity).
    Anomaly,
}

impl Action {
    /// Lower-case name, as used in rule files.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
            Action::Anomaly => "anomaly",
        }
    }
}

/// One thing a rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// An exact global, and (for deny rules) everything reached through it.
    Global {
        /// Module as written in the rule file.
        module: String,
        /// Name, possibly dotted (`Class.method`).
        name: String,
    },
    /// A whole module with all its submodules and names (deny rules only).
    Module(String),
    /// An attribute name that is dangerous wherever it appears in a dotted path (deny only).
    Attribute(String),
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pattern::Global { module, name } => write!(f, "{module}.{name}"),
            Pattern::Module(m) => write!(f, "{m}.*"),
            Pattern::Attribute(a) => write!(f, "*.{a}"),
        }
    }
}

/// One rule from `rules/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Stable id such as `PS101`.
    pub id: String,
    /// Kebab-case name.
    pub name: String,
    /// Allow, deny or anomaly.
    pub action: Action,
    /// Severity of a finding this rule produces.
    pub severity: Severity,
    /// Why the rule exists.
    pub rationale: String,
    /// Links to advisories, CVEs, write-ups.
    pub references: Vec<String>,
    /// What to do about a finding, if the rule says.
    pub help: Option<String>,
    /// What the rule matches (empty for anomaly rules).
    pub patterns: Vec<Pattern>,
    /// Globals (`module:name`) the rule must match; prose for anomaly rules.
    pub examples: Vec<String>,
    /// Allow rules: the usages allowed; `None` allows every usage.
    pub usages: Option<Vec<Usage>>,
    /// The file the rule came from (`rules/deny/network.toml`, or a user path).
    pub origin: String,
}

impl Rule {
    /// True when this rule allows `usage` (every usage when it names none).
    pub fn allows(&self, usage: Usage) -> bool {
        self.usages.as_ref().is_none_or(|u| u.contains(&usage))
    }
}

/// The answer for one imported global.
#[derive(Debug, Clone, Copy)]
pub enum Judgement<'a> {
    /// On the allowlist.
    Safe(&'a Rule),
    /// Matched a deny rule, or a name-anomaly rule (PS921/PS922); the finding's severity is the
    /// rule's severity.
    Dangerous(&'a Rule),
    /// Neither: suspicious under the default policy (rule PS001).
    Unknown,
    /// Allowlisted, but for other usages than this one: judged as unknown (rule PS001).
    OtherUse(&'a Rule),
}

impl<'a> Judgement<'a> {
    /// The rule behind the answer, if any.
    pub fn rule(&self) -> Option<&'a Rule> {
        match self {
            Judgement::Safe(r) | Judgement::Dangerous(r) | Judgement::OtherUse(r) => Some(r),
            Judgement::Unknown => None,
        }
    }
}

/// Error loading a rule file.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct RuleError {
    /// The rule file.
    pub file: String,
    /// What is wrong.
    pub message: String,
}

/// One rule file to add.
pub(crate) struct RuleText {
    pub origin: String,
    pub toml: Cow<'static, str>,
    /// The same file converted to JSON by `build.rs` (embedded files only): parsed instead of
    /// `toml`, which takes several times longer to read.
    pub json: Option<&'static str>,
}

impl RuleText {
    fn toml(origin: String, text: String) -> RuleText {
        RuleText {
            origin,
            toml: Cow::Owned(text),
            json: None,
        }
    }
}

/// All rules in force.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Arc<Vec<Rule>>,
    aliases: Vec<(String, String)>,
    sources: Vec<(String, Cow<'static, str>)>,
    index: Arc<Index>,
    warnings: Vec<String>,
}

/// Lookup tables, rebuilt whenever rules are added.
#[derive(Debug, Clone, Default)]
struct Index {
    by_id: FastMap<String, usize>,
    /// Dotted key (canonical spelling and every alias spelling) → deny rule.
    deny: FastMap<String, usize>,
    /// First component of a deny key → most components of any key starting with it.
    heads: FastMap<String, usize>,
    /// Attribute name → deny rule.
    attributes: FastMap<String, usize>,
    /// Canonical module → name → allow rule.
    allow: FastMap<String, FastMap<String, usize>>,
    /// Alias → canonical module.
    alias: FastMap<String, String>,
    /// First components of the aliases (most modules skip alias lookups entirely).
    alias_heads: FastSet<String>,
    empty_name: Option<usize>,
    non_identifier: Option<usize>,
}

/// One consistency problem of a rule.
struct Problem {
    /// An allow entry another rule takes (it has no effect), as opposed to an example that does
    /// not judge to its own rule.
    shadowed: bool,
    message: String,
}

/// A deny match found while judging.
#[derive(Clone, Copy)]
struct Candidate {
    rule: usize,
    components: usize,
}

impl RuleSet {
    /// The rules embedded in the binary from `rules/`.
    ///
    /// Parsed once per process; every call returns a cheap copy that shares the tables.
    pub fn builtin() -> RuleSet {
        builtin::builtin().clone()
    }

    /// The embedded rule files: `(path relative to the repository, text)`.
    pub fn builtin_files() -> &'static [(&'static str, &'static str)] {
        builtin::FILES
    }

    /// Add the rules of one more file (`--rules FILE`).
    ///
    /// As [`RuleSet::add_str`]: its examples must judge to their own rules.
    pub fn add_file(&mut self, path: &Path) -> Result<(), RuleError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| RuleError {
            file: origin.clone(),
            message: format!("cannot read: {e}"),
        })?;
        self.add_checked(RuleText::toml(origin, text))
    }

    /// Add the rules of one rule text; `origin` names it in errors and in [`Rule::origin`].
    ///
    /// A rule whose examples do not judge to it is an error (docs/rules.md); an allow entry that
    /// a deny rule (or an earlier allow rule) shadows is accepted with a warning
    /// ([`RuleSet::warnings`]). On error the rule set is unchanged.
    pub fn add_str(&mut self, origin: &str, text: &str) -> Result<(), RuleError> {
        self.add_checked(RuleText::toml(origin.to_string(), text.to_string()))
    }

    fn add_checked(&mut self, text: RuleText) -> Result<(), RuleError> {
        let origin = text.origin.clone();
        let before = self.clone();
        self.add_sources(vec![text])?;
        let problems = self.check_rules(|r| r.origin == origin);
        if let Some(bad) = problems.iter().find(|p| !p.shadowed) {
            let message = bad.message.clone();
            *self = before;
            return Err(RuleError {
                file: origin,
                message,
            });
        }
        self.warnings
            .extend(problems.into_iter().map(|p| p.message));
        Ok(())
    }

    /// Problems of added rule files that did not stop them from loading: allow entries that a
    /// deny rule or an earlier allow rule shadows (they have no effect). The command line
    /// prints them.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Parse several texts and rebuild the tables once. Atomic: on error nothing changes.
    pub(crate) fn add_sources(&mut self, sources: Vec<RuleText>) -> Result<(), RuleError> {
        let mut rules: Vec<Rule> = self.rules.as_ref().clone();
        let mut aliases = self.aliases.clone();
        let mut ids: HashMap<String, String> = rules
            .iter()
            .map(|r| (r.id.clone(), r.origin.clone()))
            .collect();
        let mut names: HashMap<String, String> = rules
            .iter()
            .map(|r| (r.name.clone(), r.id.clone()))
            .collect();
        for src in &sources {
            let origin = &src.origin;
            let error = |message: String| RuleError {
                file: origin.clone(),
                message,
            };
            let parsed = match src.json {
                Some(json) => file::parse_json(origin, json)?,
                None => file::parse(origin, &src.toml)?,
            };
            for (alias, canonical) in parsed.aliases {
                match aliases.iter().find(|(a, _)| *a == alias) {
                    Some((_, prev)) if *prev != canonical => {
                        return Err(error(format!(
                            "alias `{alias}` = `{canonical}` conflicts with `{alias}` = `{prev}`"
                        )));
                    }
                    Some(_) => {}
                    None => aliases.push((alias, canonical)),
                }
            }
            for (alias, canonical) in &aliases {
                if aliases.iter().any(|(a, _)| a == canonical) {
                    return Err(error(format!(
                        "alias `{alias}` = `{canonical}`: `{canonical}` is itself an alias"
                    )));
                }
            }
            for rule in parsed.rules {
                if let Some(prev) = ids.get(&rule.id) {
                    return Err(error(format!(
                        "rule {}: id already used by {prev}",
                        rule.id
                    )));
                }
                if let Some(prev) = names.get(&rule.name) {
                    return Err(error(format!(
                        "rule {}: name `{}` already used by {prev}",
                        rule.id, rule.name
                    )));
                }
                ids.insert(rule.id.clone(), origin.clone());
                names.insert(rule.name.clone(), rule.id.clone());
                rules.push(rule);
            }
        }
        self.index = Arc::new(Index::build(&rules, &aliases));
        self.rules = Arc::new(rules);
        self.aliases = aliases;
        self.sources
            .extend(sources.into_iter().map(|s| (s.origin, s.toml)));
        Ok(())
    }

    /// Judge `module.name` as resolved by the unpickler.
    pub fn judge(&self, module: &str, name: &str) -> Judgement<'_> {
        let ix = &*self.index;
        let (fixed_module, fixed_name) = fix_imports_cow(module, name);
        let mut best = None;
        ix.deny_scan(&self.rules, &fixed_module, &fixed_name, &mut best);
        if fixed_module != module || fixed_name != name {
            ix.deny_scan(&self.rules, module, name, &mut best);
        }
        if let Some(c) = best {
            return Judgement::Dangerous(&self.rules[c.rule]);
        }
        if let Some(i) = ix.name_anomaly(module, name) {
            return Judgement::Dangerous(&self.rules[i]);
        }
        let canonical = ix.canonical_module(&fixed_module);
        match ix
            .allow
            .get(canonical.as_ref())
            .and_then(|m| m.get(fixed_name.as_ref()))
        {
            Some(&i) => Judgement::Safe(&self.rules[i]),
            None => Judgement::Unknown,
        }
    }

    /// Judge `module.name` used as `usage`: an allow rule that does not list the usage answers
    /// [`Judgement::OtherUse`].
    pub fn judge_use(&self, module: &str, name: &str, usage: Usage) -> Judgement<'_> {
        match self.judge(module, name) {
            Judgement::Safe(r) if !r.allows(usage) => Judgement::OtherUse(r),
            j => j,
        }
    }

    /// Look a rule up by id (anomaly rules used by the scanner are looked up this way).
    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.index.by_id.get(id).map(|&i| &self.rules[i])
    }

    /// Every rule, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Module aliases in force: `(alias, canonical)`.
    pub fn aliases(&self) -> &[(String, String)] {
        &self.aliases
    }

    /// The module spelling rules are indexed under (`posix` → `os`, `numpy._core.x` →
    /// `numpy.core.x`).
    pub fn canonical_module<'a>(&self, module: &'a str) -> Cow<'a, str> {
        self.index.canonical_module(module)
    }

    /// SHA-256 (hex) of the rule texts in force, in load order, for audit logs.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for (_, text) in &self.sources {
            h.update((text.len() as u64).to_le_bytes());
            h.update(text.as_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Consistency problems of the rules in force, one message each (empty when all is well):
    /// an allow or deny example that does not judge to its own rule, and an allow entry
    /// shadowed by a deny rule or by another allow rule.
    pub fn self_check(&self) -> Vec<String> {
        self.check_rules(|_| true)
            .into_iter()
            .map(|p| p.message)
            .collect()
    }

    /// The consistency problems of the rules `which` selects (see [`RuleSet::self_check`]).
    fn check_rules(&self, which: impl Fn(&Rule) -> bool) -> Vec<Problem> {
        let mut problems = Vec::new();
        for rule in self.rules.iter().filter(|r| which(r)) {
            if rule.action == Action::Anomaly {
                continue;
            }
            for ex in &rule.examples {
                let Some((m, n)) = ex.split_once(':') else {
                    continue;
                };
                let got = self.judge(m, n);
                let ok = match (rule.action, got) {
                    (Action::Allow, Judgement::Safe(r))
                    | (Action::Deny, Judgement::Dangerous(r)) => r.id == rule.id,
                    _ => false,
                };
                if !ok {
                    problems.push(Problem {
                        // An allow rule's example taken by a deny rule is the shadowing below.
                        shadowed: rule.action == Action::Allow
                            && matches!(got, Judgement::Dangerous(_)),
                        message: format!(
                            "{} ({}): example `{ex}` judges to {}",
                            rule.id,
                            rule.origin,
                            describe(&got)
                        ),
                    });
                }
            }
            if rule.action == Action::Allow {
                for p in &rule.patterns {
                    if let Pattern::Global { module, name } = p {
                        let got = self.judge(module, name);
                        if !matches!(got, Judgement::Safe(r) if r.id == rule.id) {
                            problems.push(Problem {
                                shadowed: true,
                                message: format!(
                                    "{} ({}): allowed `{module}.{name}` judges to {}",
                                    rule.id,
                                    rule.origin,
                                    describe(&got)
                                ),
                            });
                        }
                    }
                }
            }
        }
        problems
    }

    /// The Markdown table of every rule (id, name, action, severity, what it matches), as
    /// written into `docs/rules.md`.
    pub fn markdown_table(&self) -> String {
        doc::markdown_table(self)
    }
}

/// Longest dotted path checked without a heap allocation.
const STACK_PATH: usize = 256;

impl Index {
    fn build(rules: &[Rule], aliases: &[(String, String)]) -> Index {
        let mut ix = Index {
            alias: aliases.iter().cloned().collect(),
            alias_heads: aliases
                .iter()
                .map(|(a, _)| first_component(a).to_string())
                .collect(),
            ..Index::default()
        };
        for (i, rule) in rules.iter().enumerate() {
            ix.by_id.entry(rule.id.clone()).or_insert(i);
            match rule.action {
                Action::Deny => {
                    for p in &rule.patterns {
                        match p {
                            Pattern::Global { module, name } => {
                                let key = format!("{}.{name}", ix.canonical_module(module));
                                insert_deny(&mut ix.deny, rules, key, i);
                            }
                            Pattern::Module(module) => {
                                let key = ix.canonical_module(module).into_owned();
                                insert_deny(&mut ix.deny, rules, key, i);
                            }
                            Pattern::Attribute(a) => {
                                insert_deny(&mut ix.attributes, rules, a.clone(), i);
                            }
                        }
                    }
                }
                Action::Allow => {
                    for p in &rule.patterns {
                        if let Pattern::Global { module, name } = p {
                            let m = ix.canonical_module(module).into_owned();
                            ix.allow
                                .entry(m)
                                .or_default()
                                .entry(name.clone())
                                .or_insert(i);
                        }
                    }
                }
                Action::Anomaly => {}
            }
        }
        // Every alias spelling of a denied path is denied too: `os.system` is also
        // `posix.system`, and an alias of something inside a denied module (`posixpath` is
        // `os.path`) is denied as a whole.
        let keys: Vec<(String, usize)> = ix.deny.iter().map(|(k, v)| (k.clone(), *v)).collect();
        for (alias, canonical) in aliases {
            for (key, rule) in &keys {
                if let Some(rest) = strip_components(key, canonical) {
                    insert_deny(&mut ix.deny, rules, format!("{alias}{rest}"), *rule);
                } else if strip_components(canonical, key).is_some() {
                    insert_deny(&mut ix.deny, rules, alias.clone(), *rule);
                }
            }
        }
        for key in ix.deny.keys() {
            let n = key.split('.').count();
            let e = ix
                .heads
                .entry(first_component(key).to_string())
                .or_insert(0);
            *e = (*e).max(n);
        }
        let anomaly = |id: &str| {
            ix.by_id
                .get(id)
                .copied()
                .filter(|&i| rules[i].action == Action::Anomaly)
        };
        ix.empty_name = anomaly(ids::EMPTY_GLOBAL_NAME);
        ix.non_identifier = anomaly(ids::NON_IDENTIFIER_GLOBAL_NAME);
        ix
    }

    fn deny_scan(&self, rules: &[Rule], module: &str, name: &str, best: &mut Option<Candidate>) {
        if !self.attributes.is_empty() {
            for comp in module.split('.').chain(name.split('.')) {
                if let Some(&i) = self.attributes.get(comp) {
                    consider(rules, best, i, 1);
                }
            }
        }
        if self.heads.is_empty() {
            return;
        }
        let len = module.len() + 1 + name.len();
        let mut buf = [0u8; STACK_PATH];
        let heap;
        let full: &str = if len <= STACK_PATH {
            buf[..module.len()].copy_from_slice(module.as_bytes());
            buf[module.len()] = b'.';
            buf[module.len() + 1..len].copy_from_slice(name.as_bytes());
            // Two valid strings joined by '.' are valid UTF-8; the fallback is never taken.
            match std::str::from_utf8(&buf[..len]) {
                Ok(s) => s,
                Err(_) => {
                    heap = [module, ".", name].concat();
                    &heap
                }
            }
        } else {
            heap = [module, ".", name].concat();
            &heap
        };
        let module_components = module.split('.').count();
        let mut start = 0;
        let mut component = 0;
        loop {
            if component == 0 || component >= module_components {
                self.scan_from(rules, &full[start..], best);
            }
            match full[start..].find('.') {
                Some(p) => {
                    start += p + 1;
                    component += 1;
                }
                None => break,
            }
        }
    }

    /// Check every run of whole components at the start of `rest`.
    fn scan_from(&self, rules: &[Rule], rest: &str, best: &mut Option<Candidate>) {
        let mut end = rest.find('.').unwrap_or(rest.len());
        let Some(&max) = self.heads.get(&rest[..end]) else {
            return;
        };
        let mut count = 1;
        loop {
            if let Some(&i) = self.deny.get(&rest[..end]) {
                consider(rules, best, i, count);
            }
            if count >= max || end >= rest.len() {
                break;
            }
            end = match rest[end + 1..].find('.') {
                Some(p) => end + 1 + p,
                None => rest.len(),
            };
            count += 1;
        }
    }

    fn name_anomaly(&self, module: &str, name: &str) -> Option<usize> {
        let components = || module.split('.').chain(name.split('.'));
        if components().any(str::is_empty) {
            return self.empty_name;
        }
        if !components().all(is_identifier) {
            return self.non_identifier;
        }
        None
    }

    /// Replace the longest aliased prefix (whole components) of `module` by its canonical
    /// spelling.
    fn canonical_module<'a>(&self, module: &'a str) -> Cow<'a, str> {
        if !self.alias_heads.contains(first_component(module)) {
            return Cow::Borrowed(module);
        }
        let mut end = module.len();
        loop {
            if let Some(c) = self.alias.get(&module[..end]) {
                return Cow::Owned(format!("{c}{}", &module[end..]));
            }
            match module[..end].rfind('.') {
                Some(p) => end = p,
                None => return Cow::Borrowed(module),
            }
        }
    }
}

fn first_component(path: &str) -> &str {
    path.split('.').next().unwrap_or(path)
}

fn consider(rules: &[Rule], best: &mut Option<Candidate>, rule: usize, components: usize) {
    let new = Candidate { rule, components };
    match *best {
        Some(old) if !better(rules, new, old) => {}
        _ => *best = Some(new),
    }
}

fn describe(j: &Judgement<'_>) -> String {
    match j {
        Judgement::Safe(r) => format!("safe ({})", r.id),
        Judgement::Dangerous(r) => format!("dangerous ({})", r.id),
        Judgement::Unknown => "unknown".into(),
        Judgement::OtherUse(r) => format!("allowed by {} for other usages", r.id),
    }
}

/// Whether `new` should replace `old` as the reported deny match.
fn better(rules: &[Rule], new: Candidate, old: Candidate) -> bool {
    let (a, b) = (&rules[new.rule], &rules[old.rule]);
    (a.severity, new.components, std::cmp::Reverse(new.rule))
        > (b.severity, old.components, std::cmp::Reverse(old.rule))
}

/// Insert a deny key, keeping the more severe rule (the earlier one among equals).
fn insert_deny(map: &mut FastMap<String, usize>, rules: &[Rule], key: String, rule: usize) {
    match map.get(&key) {
        Some(&old)
            if (rules[old].severity, std::cmp::Reverse(old))
                >= (rules[rule].severity, std::cmp::Reverse(rule)) => {}
        _ => {
            map.insert(key, rule);
        }
    }
}

/// If `path` is `prefix` or lies below it (whole components), the rest (`""` or `".x.y"`).
fn strip_components<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    path.strip_prefix(prefix)
        .filter(|rest| rest.is_empty() || rest.starts_with('.'))
}
