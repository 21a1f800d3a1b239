//! Name resolution helpers shared by the pickle machine and the rules.
//!
//! `fix_imports` reproduces what CPython's unpickler does to `(module, name)` for protocol 0–2
//! streams (`Lib/pickle.py` `find_class` with `fix_imports=True`, the default): if the pair is in
//! `_compat_pickle.NAME_MAPPING` both parts are replaced, otherwise if the module is in
//! `_compat_pickle.IMPORT_MAPPING` the module is replaced. The tables below are those of
//! `Lib/_compat_pickle.py` (CPython 3.8–3.14; `exceptions.WindowsError`, only present on
//! Windows builds, is included because mapping it is harmless).

use std::borrow::Cow;

/// Apply CPython's `_compat_pickle` NAME_MAPPING, else IMPORT_MAPPING, to `(module, name)`.
///
/// Returns the pair unchanged when neither table has an entry.
pub fn fix_imports(module: &str, name: &str) -> (String, String) {
    let (m, n) = fix_imports_cow(module, name);
    (m.into_owned(), n.into_owned())
}

/// Like [`fix_imports`] without allocating when nothing is mapped.
pub fn fix_imports_cow<'a>(module: &'a str, name: &'a str) -> (Cow<'a, str>, Cow<'a, str>) {
    if let Some((m, n)) = name_mapping(module, name) {
        return (Cow::Borrowed(m), Cow::Borrowed(n));
    }
    match import_mapping(module) {
        Some(m) => (Cow::Borrowed(m), Cow::Borrowed(name)),
        None => (Cow::Borrowed(module), Cow::Borrowed(name)),
    }
}

/// `_compat_pickle.IMPORT_MAPPING`, including the non-mutual additions made after the reverse
/// table is computed.
pub fn import_mapping(module: &str) -> Option<&'static str> {
    Some(match module {
        "__builtin__" => "builtins",
        "copy_reg" => "copyreg",
        "Queue" => "queue",
        "SocketServer" => "socketserver",
        "ConfigParser" => "configparser",
        "repr" => "reprlib",
        "tkFileDialog" => "tkinter.filedialog",
        "tkSimpleDialog" => "tkinter.simpledialog",
        "tkColorChooser" => "tkinter.colorchooser",
        "tkCommonDialog" => "tkinter.commondialog",
        "Dialog" => "tkinter.dialog",
        "Tkdnd" => "tkinter.dnd",
        "tkFont" => "tkinter.font",
        "tkMessageBox" => "tkinter.messagebox",
        "ScrolledText" => "tkinter.scrolledtext",
        "Tkconstants" => "tkinter.constants",
        "Tix" => "tkinter.tix",
        "ttk" => "tkinter.ttk",
        "Tkinter" => "tkinter",
        "markupbase" => "_markupbase",
        "_winreg" => "winreg",
        "thread" => "_thread",
        "dummy_thread" => "_dummy_thread",
        "dbhash" => "dbm.bsd",
        "dumbdbm" => "dbm.dumb",
        "dbm" => "dbm.ndbm",
        "gdbm" => "dbm.gnu",
        "xmlrpclib" => "xmlrpc.client",
        "SimpleXMLRPCServer" => "xmlrpc.server",
        "httplib" => "http.client",
        "htmlentitydefs" => "html.entities",
        "HTMLParser" => "html.parser",
        "Cookie" => "http.cookies",
        "cookielib" => "http.cookiejar",
        "BaseHTTPServer" => "http.server",
        "test.test_support" => "test.support",
        "commands" => "subprocess",
        "urlparse" => "urllib.parse",
        "robotparser" => "urllib.robotparser",
        "urllib2" => "urllib.request",
        "anydbm" => "dbm",
        "_abcoll" => "collections.abc",
        // Non-mutual mappings.
        "cPickle" => "pickle",
        "_elementtree" => "xml.etree.ElementTree",
        "FileDialog" => "tkinter.filedialog",
        "SimpleDialog" => "tkinter.simpledialog",
        "DocXMLRPCServer" => "xmlrpc.server",
        "SimpleHTTPServer" => "http.server",
        "CGIHTTPServer" => "http.server",
        "UserDict" => "collections",
        "UserList" => "collections",
        "UserString" => "collections",
        "whichdb" => "dbm",
        "StringIO" => "io",
        "cStringIO" => "io",
        _ => return None,
    })
}

/// Python 2 exception names that `_compat_pickle` maps from `exceptions` to `builtins`.
const PYTHON2_EXCEPTIONS: &[&str] = &[
    "ArithmeticError",
    "AssertionError",
    "AttributeError",
    "BaseException",
    "BufferError",
    "BytesWarning",
    "DeprecationWarning",
    "EOFError",
    "EnvironmentError",
    "Exception",
    "FloatingPointError",
    "FutureWarning",
    "GeneratorExit",
    "IOError",
    "ImportError",
    "ImportWarning",
    "IndentationError",
    "IndexError",
    "KeyError",
    "KeyboardInterrupt",
    "LookupError",
    "MemoryError",
    "NameError",
    "NotImplementedError",
    "OSError",
    "OverflowError",
    "PendingDeprecationWarning",
    "ReferenceError",
    "RuntimeError",
    "RuntimeWarning",
    "StopIteration",
    "SyntaxError",
    "SyntaxWarning",
    "SystemError",
    "SystemExit",
    "TabError",
    "TypeError",
    "UnboundLocalError",
    "UnicodeDecodeError",
    "UnicodeEncodeError",
    "UnicodeError",
    "UnicodeTranslateError",
    "UnicodeWarning",
    "UserWarning",
    "ValueError",
    "Warning",
    "ZeroDivisionError",
    "WindowsError",
];

/// `_compat_pickle.NAME_MAPPING`, including the exception loops and the later additions.
pub fn name_mapping(module: &str, name: &str) -> Option<(&'static str, &'static str)> {
    let to = match module {
        "__builtin__" => match name {
            "xrange" => ("builtins", "range"),
            "reduce" => ("functools", "reduce"),
            "intern" => ("sys", "intern"),
            "unichr" => ("builtins", "chr"),
            "unicode" => ("builtins", "str"),
            "long" => ("builtins", "int"),
            "basestring" => ("builtins", "str"),
            _ => return None,
        },
        "itertools" => match name {
            "izip" => ("builtins", "zip"),
            "imap" => ("builtins", "map"),
            "ifilter" => ("builtins", "filter"),
            "ifilterfalse" => ("itertools", "filterfalse"),
            "izip_longest" => ("itertools", "zip_longest"),
            _ => return None,
        },
        "UserDict" => match name {
            "IterableUserDict" | "UserDict" => ("collections", "UserDict"),
            _ => return None,
        },
        "UserList" if name == "UserList" => ("collections", "UserList"),
        "UserString" if name == "UserString" => ("collections", "UserString"),
        "whichdb" if name == "whichdb" => ("dbm", "whichdb"),
        "_socket" if name == "fromfd" => ("socket", "fromfd"),
        "_multiprocessing" if name == "Connection" => ("multiprocessing.connection", "Connection"),
        "multiprocessing.process" if name == "Process" => ("multiprocessing.context", "Process"),
        "multiprocessing.forking" if name == "Popen" => ("multiprocessing.popen_fork", "Popen"),
        "urllib" => match name {
            "ContentTooShortError" => ("urllib.error", "ContentTooShortError"),
            "getproxies" => ("urllib.request", "getproxies"),
            "pathname2url" => ("urllib.request", "pathname2url"),
            "quote_plus" => ("urllib.parse", "quote_plus"),
            "quote" => ("urllib.parse", "quote"),
            "unquote_plus" => ("urllib.parse", "unquote_plus"),
            "unquote" => ("urllib.parse", "unquote"),
            "url2pathname" => ("urllib.request", "url2pathname"),
            "urlcleanup" => ("urllib.request", "urlcleanup"),
            "urlencode" => ("urllib.parse", "urlencode"),
            "urlopen" => ("urllib.request", "urlopen"),
            "urlretrieve" => ("urllib.request", "urlretrieve"),
            _ => return None,
        },
        "urllib2" => match name {
            "HTTPError" => ("urllib.error", "HTTPError"),
            "URLError" => ("urllib.error", "URLError"),
            _ => return None,
        },
        "exceptions" => {
            if name == "StandardError" {
                ("builtins", "Exception")
            } else {
                let exc = PYTHON2_EXCEPTIONS.iter().find(|e| **e == name)?;
                ("builtins", *exc)
            }
        }
        "multiprocessing" => match name {
            "AuthenticationError" => ("multiprocessing.context", "AuthenticationError"),
            "BufferTooShort" => ("multiprocessing.context", "BufferTooShort"),
            "ProcessError" => ("multiprocessing.context", "ProcessError"),
            "TimeoutError" => ("multiprocessing.context", "TimeoutError"),
            _ => return None,
        },
        "socket" if name == "_socketobject" => ("socket", "SocketType"),
        _ => return None,
    };
    Some(to)
}

/// Whether `s` is usable as one component of a Python dotted name: non-empty, does not start
/// with a digit, and consists of `_` and Unicode letters and digits only.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        None => false,
        Some(c) if c.is_numeric() => false,
        Some(c) if !(c == '_' || c.is_alphanumeric()) => false,
        _ => chars.all(|c| c == '_' || c.is_alphanumeric()),
    }
}

/// Whether every dot-separated component of `s` is an identifier (see [`is_identifier`]).
pub fn is_dotted_identifier(s: &str) -> bool {
    s.split('.').all(is_identifier)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_sizes_match_cpython() {
        let imports = [
            "__builtin__",
            "copy_reg",
            "Queue",
            "SocketServer",
            "ConfigParser",
            "repr",
            "tkFileDialog",
            "tkSimpleDialog",
            "tkColorChooser",
            "tkCommonDialog",
            "Dialog",
            "Tkdnd",
            "tkFont",
            "tkMessageBox",
            "ScrolledText",
            "Tkconstants",
            "Tix",
            "ttk",
            "Tkinter",
            "markupbase",
            "_winreg",
            "thread",
            "dummy_thread",
            "dbhash",
            "dumbdbm",
            "dbm",
            "gdbm",
            "xmlrpclib",
            "SimpleXMLRPCServer",
            "httplib",
            "htmlentitydefs",
            "HTMLParser",
            "Cookie",
            "cookielib",
            "BaseHTTPServer",
            "test.test_support",
            "commands",
            "urlparse",
            "robotparser",
            "urllib2",
            "anydbm",
            "_abcoll",
            "cPickle",
            "_elementtree",
            "FileDialog",
            "SimpleDialog",
            "DocXMLRPCServer",
            "SimpleHTTPServer",
            "CGIHTTPServer",
            "UserDict",
            "UserList",
            "UserString",
            "whichdb",
            "StringIO",
            "cStringIO",
        ];
        assert_eq!(imports.len(), 55);
        assert!(imports.iter().all(|m| import_mapping(m).is_some()));
        assert_eq!(import_mapping("os"), None);
    }

    #[test]
    fn name_mapping_wins_over_import_mapping() {
        assert_eq!(
            fix_imports("__builtin__", "reduce"),
            ("functools".into(), "reduce".into())
        );
        assert_eq!(
            fix_imports("__builtin__", "eval"),
            ("builtins".into(), "eval".into())
        );
        assert_eq!(
            fix_imports("UserDict", "UserDict"),
            ("collections".into(), "UserDict".into())
        );
        assert_eq!(
            fix_imports("UserDict", "DictMixin"),
            ("collections".into(), "DictMixin".into())
        );
        assert_eq!(
            fix_imports("exceptions", "Foo"),
            ("exceptions".into(), "Foo".into())
        );
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("_rebuild_tensor_v2"));
        assert!(is_identifier("名前"));
        assert!(!is_identifier(""));
        assert!(!is_identifier("1x"));
        assert!(!is_identifier("a b"));
        assert!(!is_identifier("a\0"));
        assert!(is_dotted_identifier("os.path"));
        assert!(!is_dotted_identifier("os..path"));
    }
}
