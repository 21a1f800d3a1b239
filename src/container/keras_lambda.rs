//! Keras Lambda layers judged by what their bytecode reaches. The code (Keras 3 `__lambda__`
//! `code`, Keras 2 / tf.keras `function[0]`) is base64 of `marshal.dumps(function.__code__)`;
//! Keras rebuilds the function with `types.FunctionType(code, globals)` and calls it on every
//! forward pass. A function can only reach what its names reach: `co_names` (globals,
//! attributes and imported modules) of the code and of every code object nested in it
//! (comprehensions, inner lambdas), read with [`crate::format::marshal`]:
//!
//! * a name that runs code, imports, opens files, starts processes, talks to the network or
//!   walks Python's object graph (`__import__`, `eval`, `getattr`, `open`, `os`, `system`,
//!   `load`, any dunder, the modules Keras's own loader has in its globals, …) is dangerous
//!   (PS984), however the rest is spelt: string building cannot reach an object without one of
//!   these names;
//! * a function whose names are all tensor arithmetic, the usual module aliases (`tf`, `K`,
//!   `ops`, `np`) and harmless builtins is clean;
//! * anything else, and code that does not decode, is suspicious (PS980), with the names.
//!
//! The code string is turned into bytes as `func_load` does (Python's lenient base64, else the
//! string's `raw_unicode_escape` bytes), and tf_keras configs are read wherever they keep code:
//! `function`, `output_shape` and `mask`, each with the `module` whose globals the function
//! runs with; in a module other than the tensor libraries' no name counts as arithmetic, and a
//! name the rules call dangerous in that module (`posix_spawn` in `os`) is dangerous.

use super::Ctx;
use crate::finding::{Finding, Usage};
use crate::format::marshal;

/// Rule ids of Lambda findings.
pub mod ids {
    // Re-exported from the one registry, `crate::rules::ids`.
    pub use crate::rules::ids::{KERAS_LAMBDA as UNJUDGED, KERAS_LAMBDA_DANGEROUS as DANGEROUS};
}

/// Names that reach code execution, imports, files, processes, the network or Python's
/// internals. Modules among them include those in the globals Keras builds Lambdas with
/// (`keras.src.utils.python_utils`, tf_keras `generic_utils`: `marshal`, `types`, `inspect`,
/// `codecs`, `os`, `sys`, …).
const DANGEROUS: &[&str] = &[
    // Builtins.
    "__import__",
    "eval",
    "exec",
    "compile",
    "open",
    "getattr",
    "setattr",
    "delattr",
    "globals",
    "locals",
    "vars",
    "breakpoint",
    "input",
    "exit",
    "quit",
    "help",
    "__builtins__",
    "__loader__",
    "__spec__",
    // Modules.
    "os",
    "sys",
    "subprocess",
    "shutil",
    "socket",
    "pty",
    "posix",
    "nt",
    "builtins",
    "importlib",
    "imp",
    "marshal",
    "pickle",
    "cPickle",
    "_pickle",
    "dill",
    "cloudpickle",
    "joblib",
    "ctypes",
    "types",
    "inspect",
    "codecs",
    "io",
    "pathlib",
    "tempfile",
    "glob",
    "urllib",
    "urllib2",
    "urllib3",
    "requests",
    "httpx",
    "http",
    "httplib",
    "ftplib",
    "smtplib",
    "telnetlib",
    "webbrowser",
    "antigravity",
    "platform",
    "signal",
    "multiprocessing",
    "threading",
    "asyncio",
    "code",
    "codeop",
    "runpy",
    "pdb",
    "gc",
    "python_utils",
    "generic_utils",
    "serialization_lib",
    "file_utils",
    "saving",
    // Process, file and network functions.
    "system",
    "popen",
    "spawn",
    "spawnl",
    "spawnle",
    "spawnlp",
    "spawnv",
    "spawnve",
    "spawnvp",
    "execl",
    "execle",
    "execlp",
    "execv",
    "execve",
    "execvp",
    "execvpe",
    "fork",
    "forkpty",
    "kill",
    "remove",
    "unlink",
    "rmdir",
    "rmtree",
    "removedirs",
    "chmod",
    "chown",
    "rename",
    "renames",
    "makedirs",
    "mkdir",
    "symlink",
    "link",
    "Popen",
    "run_path",
    "check_output",
    "check_call",
    "getoutput",
    "getstatusoutput",
    "urlopen",
    "urlretrieve",
    "load",
    "loads",
    "save",
    "savez",
    "savez_compressed",
    "dump",
    "dumps",
    "fromfile",
    "tofile",
    "memmap",
    "loadtxt",
    "savetxt",
    "genfromtxt",
    "read_file",
    "write_file",
    "GFile",
    "gfile",
    "get_file",
    "load_model",
    "load_weights",
    "save_weights",
    "save_model",
    "func_load",
    "deserialize_keras_object",
    "deserialize",
    "FunctionType",
    "CodeType",
    "LambdaType",
    "LoadLibrary",
    "CDLL",
    "cdll",
    "windll",
    "dlopen",
    "load_library",
    "load_op_library",
    "py_function",
    "numpy_function",
    "py_func",
    "enable_unsafe_deserialization",
    "environ",
    "getenv",
    "putenv",
    "modules",
    "listdir",
    "scandir",
    "walk",
    "read_text",
    "write_text",
    "read_bytes",
    "write_bytes",
    "import_module",
    "reload",
    "get_source",
    "getsource",
];

/// Names a tensor function uses: module aliases, tensor operations, harmless builtins and
/// tensor attributes. A function whose every name is here (and none dangerous) is clean.
const TENSOR_NAMES: &[&str] = &[
    // Module aliases and namespaces.
    "tf",
    "K",
    "keras",
    "ops",
    "np",
    "numpy",
    "backend",
    "math",
    "nn",
    "linalg",
    "image",
    "random",
    "layers",
    "activations",
    "tensorflow",
    "torch",
    "jnp",
    "jax",
    "lax",
    "experimental",
    "compat",
    "v1",
    "v2",
    "dtypes",
    "bitwise",
    // Builtins.
    "len",
    "range",
    "int",
    "float",
    "bool",
    "str",
    "abs",
    "min",
    "max",
    "sum",
    "round",
    "tuple",
    "list",
    "dict",
    "set",
    "frozenset",
    "slice",
    "isinstance",
    "enumerate",
    "zip",
    "map",
    "filter",
    "sorted",
    "reversed",
    "any",
    "all",
    "pow",
    "divmod",
    "print",
    "None",
    "True",
    "False",
    "Ellipsis",
    "ValueError",
    "TypeError",
    // Tensor attributes.
    "shape",
    "dtype",
    "ndim",
    "T",
    "size",
    "rank",
    "get_shape",
    "as_list",
    "value",
    "numpy",
    "astype",
    "mT",
    "real",
    "imag",
    // Operations (keras.ops, keras.backend, tf, numpy).
    "add",
    "subtract",
    "multiply",
    "divide",
    "true_divide",
    "floor_divide",
    "truediv",
    "floordiv",
    "matmul",
    "dot",
    "tensordot",
    "batch_dot",
    "einsum",
    "mean",
    "reduce_mean",
    "reduce_sum",
    "reduce_max",
    "reduce_min",
    "reduce_prod",
    "reduce_any",
    "reduce_all",
    "reduce_std",
    "reduce_variance",
    "reduce_logsumexp",
    "logsumexp",
    "prod",
    "std",
    "var",
    "moments",
    "sqrt",
    "rsqrt",
    "square",
    "exp",
    "expm1",
    "log",
    "log1p",
    "log2",
    "log10",
    "sign",
    "negative",
    "reciprocal",
    "tanh",
    "sigmoid",
    "relu",
    "relu6",
    "elu",
    "selu",
    "gelu",
    "softplus",
    "softsign",
    "swish",
    "silu",
    "softmax",
    "log_softmax",
    "hard_sigmoid",
    "hard_swish",
    "leaky_relu",
    "mish",
    "concat",
    "concatenate",
    "stack",
    "unstack",
    "hstack",
    "vstack",
    "reshape",
    "transpose",
    "permute_dimensions",
    "expand_dims",
    "squeeze",
    "flatten",
    "batch_flatten",
    "cast",
    "int_shape",
    "clip",
    "clip_by_value",
    "clip_by_norm",
    "maximum",
    "minimum",
    "power",
    "l2_normalize",
    "normalize",
    "norm",
    "where",
    "cond",
    "equal",
    "not_equal",
    "greater",
    "greater_equal",
    "less",
    "less_equal",
    "logical_and",
    "logical_or",
    "logical_not",
    "logical_xor",
    "gather",
    "gather_nd",
    "take",
    "take_along_axis",
    "strided_slice",
    "split",
    "tile",
    "repeat",
    "repeat_elements",
    "ones_like",
    "zeros_like",
    "full_like",
    "ones",
    "zeros",
    "full",
    "fill",
    "eye",
    "identity",
    "cumsum",
    "cumprod",
    "argmax",
    "argmin",
    "argsort",
    "sort",
    "top_k",
    "floor",
    "ceil",
    "mod",
    "floormod",
    "sin",
    "cos",
    "tan",
    "arcsin",
    "arccos",
    "arctan",
    "arctan2",
    "atan",
    "atan2",
    "sinh",
    "cosh",
    "pad",
    "reverse",
    "flip",
    "roll",
    "one_hot",
    "sequence_mask",
    "boolean_mask",
    "segment_sum",
    "unsorted_segment_sum",
    "scatter_nd",
    "resize",
    "resize_images",
    "crop_to_bounding_box",
    "random_normal",
    "random_uniform",
    "normal",
    "uniform",
    "dropout",
    "epsilon",
    "floatx",
    "float16",
    "float32",
    "float64",
    "bfloat16",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "complex64",
    "convert_to_tensor",
    "constant",
    "newaxis",
    "count_nonzero",
    "linspace",
    "arange",
    "meshgrid",
    "outer",
    "cross",
    "trace",
    "diag",
    "diagonal",
    "triu",
    "tril",
    "band_part",
    "matrix_band_part",
    "erf",
    "isnan",
    "isinf",
    "is_nan",
    "is_inf",
    "nan_to_num",
    "stop_gradient",
    "broadcast_to",
    "average",
    "amax",
    "amin",
    "l2_loss",
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
    "binary_crossentropy",
    "mean_squared_error",
    "cosine_similarity",
    "depth_to_space",
    "space_to_depth",
    "conv",
    "conv1d",
    "conv2d",
    "max_pool",
    "avg_pool",
    "pool",
    "bias_add",
    "softmax_cross_entropy_with_logits",
    "sigmoid_cross_entropy_with_logits",
    "moveaxis",
    "swapaxes",
    "rot90",
];

/// Whether a name is one that reaches code execution, files, processes, the network or Python's
/// internals (see [`DANGEROUS`]).
pub(crate) fn is_dangerous_name(n: &str) -> bool {
    DANGEROUS.contains(&n) || (n.starts_with("__") && n.ends_with("__"))
}

/// The bytes Keras's `func_load` unmarshals from a code string: base64 decoded as Python does
/// when the string is ASCII, else (or when that fails) `code.encode("raw_unicode_escape")`.
fn code_bytes(code: &str) -> Vec<u8> {
    if code.is_ascii() {
        if let Some(b) = super::keras::decode_base64(code) {
            return b;
        }
    }
    let mut out = Vec::with_capacity(code.len());
    for c in code.chars() {
        match u32::from(c) {
            b @ 0..=0xff => out.push(b as u8),
            w @ 0x100..=0xffff => out.extend(format!("\\u{w:04x}").bytes()),
            w => out.extend(format!("\\U{w:08x}").bytes()),
        }
    }
    out
}

/// Judge one Lambda's code (`code`, as the config stores it) found at `at`. `module` is the
/// module tf_keras takes the function's globals from (`config.module`), when the config names one.
pub(crate) fn judge(
    ctx: &Ctx<'_>,
    at: &str,
    code: Option<&str>,
    module: Option<&str>,
) -> Option<Finding> {
    let Some(text) = code else {
        return Some(ctx.anomaly(
            ids::UNJUDGED,
            None,
            format!("Lambda at {at} carries Python bytecode in a shape this scan does not read"),
        ));
    };
    let decoded = match marshal::read_code(&code_bytes(text)) {
        Ok(decoded) => decoded,
        Err(e) => {
            return Some(ctx.anomaly(
                ids::UNJUDGED,
                None,
                format!("Lambda at {at}: its bytecode does not decode as a Python 3.8–3.13 code object ({e})"),
            ))
        }
    };
    judge_code(ctx, at, &decoded.0, decoded.1, module)
}

fn judge_code(
    ctx: &Ctx<'_>,
    at: &str,
    code: &marshal::Code,
    layout: marshal::Layout,
    module: Option<&str>,
) -> Option<Finding> {
    let mut names: Vec<&str> = Vec::new();
    for c in code.all() {
        for n in &c.names {
            if !names.contains(&n.as_str()) {
                names.push(n);
            }
        }
    }
    let what = format!(
        "Lambda at {at} (Python {} bytecode of '{}')",
        layout.versions(),
        code.qualname
    );
    // tf_keras builds the function with the globals of the module its config names: a name is
    // then whatever that module holds under it (`module: "os"` makes `system` os.system).
    fn top(m: &str) -> &str {
        m.split('.').next().unwrap_or("")
    }
    let foreign =
        module.filter(|m| *m != "__main__" && !super::keras::MODULES_FOR_LAMBDAS.contains(&top(m)));
    // Every name of a module that is itself dangerous (`os`) is dangerous.
    let foreign_dangerous = foreign.is_some_and(|m| is_dangerous_name(top(m)));
    let dangerous: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| {
            is_dangerous_name(n)
                || foreign_dangerous
                || foreign.is_some_and(|m| {
                    matches!(
                        ctx.scanner.rules.judge(m, n),
                        crate::rules::Judgement::Dangerous(_)
                    )
                })
        })
        .collect();
    if !dangerous.is_empty() {
        let mut f = ctx.anomaly(
            ids::DANGEROUS,
            None,
            format!(
                "{what} reaches {}: code execution, imports, files, processes or Python internals, run on every call of the layer (names it uses: {})",
                dangerous.join(", "),
                names.join(", ")
            ),
        );
        f.global = Some(match foreign {
            Some(m) => format!("{m}.{}", dangerous.join(",")),
            None => dangerous.join("."),
        });
        f.usage = Usage::Called;
        return Some(f);
    }
    // In a module's globals other than the tensor libraries', no name is known to be arithmetic.
    let unknown: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| foreign.is_some() || !TENSOR_NAMES.contains(n))
        .collect();
    if unknown.is_empty() {
        return None;
    }
    Some(ctx.anomaly(
        ids::UNJUDGED,
        None,
        format!(
            "{what} uses names this scan does not know to be tensor arithmetic: {}",
            unknown.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::code_bytes;

    #[test]
    fn code_bytes_as_keras_reads_them() {
        // Each as `func_load` turns it into bytes (Python's base64 codec, else
        // `raw_unicode_escape`).
        assert_eq!(code_bytes("aGVs\nbG8=\n"), b"hello");
        assert_eq!(code_bytes("aGVsbG8"), b"aGVsbG8");
        assert_eq!(code_bytes("\u{e3}\u{0}x"), b"\xe3\x00x");
        assert_eq!(
            code_bytes("\u{abcd}\u{1f600}\u{e9}"),
            b"\\uabcd\\U0001f600\xe9"
        );
    }
}
