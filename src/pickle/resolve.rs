//! What a symbolic value stands for, and what calling it runs, as dotted names the rules judge.
//!
//! A pickle can reach a function without naming it in a GLOBAL opcode: through
//! `getattr(C, 'name')` (how Python pickles a method reference: `zoneinfo.ZoneInfo._unpickle`),
//! `operator.attrgetter`/`methodcaller`, a `functools.partial` wrapping it, or a reconstructor
//! that instantiates or calls what it is given (`copyreg._reconstructor(C, object, None)`,
//! dill's `_create_array(f, args, …)`). Judging the helper alone is wrong both ways: it calls
//! harmless method references dangerous, and it says nothing about the function really reached.
//! So each such form is resolved to the name it reaches, and the rules judge that name. Where an
//! argument cannot be resolved (not a global, not a constant string), the helper is judged as
//! itself, which its deny rule makes dangerous.
//!
//! Everything here is bounded: resolution follows at most `MAX_DEPTH` links.

use super::value::{Id, Object, Value};
use super::vm::Vm;
use crate::finding::Usage;

/// Links followed at most while resolving one value (a memo cycle cannot loop).
const MAX_DEPTH: usize = 24;

/// A dotted name reached by a value, and the imports it was reached through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// Module, as imported.
    pub module: String,
    /// Name within the module, dotted where attributes were walked.
    pub name: String,
    /// Offsets of the imports this name was reached through (they are judged as part of it).
    pub via: Vec<u64>,
}

impl Named {
    /// `module.name`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.module, self.name)
    }

    fn attr(mut self, attr: &str, via: &[u64]) -> Named {
        self.name.push('.');
        self.name.push_str(attr);
        self.via.extend_from_slice(via);
        self
    }
}

/// One thing to judge for a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judged {
    /// `named` is used this way.
    Use(Named, Usage),
    /// A pure lookup (`getattr`, `attrgetter`): nothing runs; the result is `named`.
    Lookup(Named),
    /// What is called is not a global and not reached from one (a list, a string, …).
    Unnamed,
}

/// Helpers whose meaning depends on their arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Helper {
    /// `getattr(obj, name[, default])`.
    GetAttr,
    /// `operator.attrgetter(name)`: builds a lookup.
    AttrGetter,
    /// `operator.methodcaller(name, …)`: builds a method call.
    MethodCaller,
    /// `functools.partial(f, …)`: builds a call of `f`.
    Partial,
    /// `copyreg._reconstructor(cls, base, state)`: `base.__new__(cls, state)`, and
    /// `base.__init__` when base is not `object`.
    Reconstructor,
    /// `copyreg.__newobj__(cls, …)` / `__newobj_ex__`: `cls.__new__(cls, …)`.
    NewObj,
    /// dill's `_create_array(f, args, state, npdict)`: calls `f(*args)`.
    CallsFirst,
}

fn helper(module: &str, name: &str) -> Option<Helper> {
    Some(match (module, name) {
        ("builtins" | "__builtin__", "getattr") => Helper::GetAttr,
        ("operator" | "_operator", "attrgetter") => Helper::AttrGetter,
        ("operator" | "_operator", "methodcaller") => Helper::MethodCaller,
        ("functools" | "_functools", "partial") => Helper::Partial,
        ("copyreg" | "copy_reg", "_reconstructor") => Helper::Reconstructor,
        ("copyreg" | "copy_reg", "__newobj__" | "__newobj_ex__") => Helper::NewObj,
        ("dill._dill" | "dill.dill", "_create_array") => Helper::CallsFirst,
        _ => return None,
    })
}

/// Resolves values of one machine.
pub struct Resolver<'v, 'a> {
    vm: &'v Vm<'a>,
}

impl<'v, 'a> Resolver<'v, 'a> {
    /// A resolver over `vm`'s values.
    pub fn new(vm: &'v Vm<'a>) -> Self {
        Resolver { vm }
    }

    /// The dotted name `id` stands for: a global, an attribute reached from one, or an object
    /// named by what created it (an instance by its class, a call's result by the callable).
    pub fn name_of(&self, id: Id) -> Option<Named> {
        self.name_at(id, 0)
    }

    /// What runs when the object `id` (a call record) was created, as judgements.
    pub fn call(&self, id: Id) -> Vec<Judged> {
        let Value::Object(o) = self.vm.value(id) else {
            return Vec::new();
        };
        let usage = if o.kind.is_instantiation() {
            Usage::Instantiated
        } else {
            Usage::Called
        };
        let args = self.args(o);
        let Some(callee) = self.callee(o.func, args, 0) else {
            return vec![Judged::Unnamed];
        };
        let judge_helper = || vec![Judged::Use(callee.clone(), usage)];
        let Some(h) = helper(&callee.module, &callee.name) else {
            return judge_helper();
        };
        let via = &callee.via;
        match h {
            Helper::GetAttr => match self.lookup(args, 0) {
                Some(n) if (2..=3).contains(&args.len()) => vec![Judged::Lookup(n.with_via(via))],
                _ => judge_helper(),
            },
            // Building a wrapper runs nothing; what it wraps is judged where it is called.
            Helper::AttrGetter | Helper::MethodCaller => {
                if args.first().and_then(|&a| self.str_at(a)).is_some() {
                    Vec::new()
                } else {
                    judge_helper()
                }
            }
            // `partial(f, …)` refers to `f` (judged as a reference, shown with the call that
            // binds its arguments); calling the partial later is judged as calling `f`.
            Helper::Partial => match args.first().and_then(|&f| self.callee(f, &[], 0)) {
                Some(f) => vec![Judged::Use(f.with_via(via), Usage::Imported)],
                None => judge_helper(),
            },
            Helper::Reconstructor | Helper::NewObj => {
                let Some(cls) = args.first().and_then(|&c| self.name_at(c, 0)) else {
                    return judge_helper();
                };
                let mut out = vec![Judged::Use(cls.with_via(via), Usage::Instantiated)];
                if h == Helper::Reconstructor {
                    match args.get(1).map(|&b| (b, self.name_at(b, 0))) {
                        Some((_, Some(base))) if is_object(&base) => {}
                        Some((_, Some(base))) => out.push(Judged::Use(base, Usage::Called)),
                        _ => return judge_helper(),
                    }
                }
                out
            }
            Helper::CallsFirst => match args.first().and_then(|&f| self.callee(f, &[], 0)) {
                Some(f) => vec![Judged::Use(f.with_via(via), Usage::Called)],
                None => judge_helper(),
            },
        }
    }

    /// True when `id` is an object built by `functools.partial` (whose state only says what
    /// it wraps, judged where it is called).
    pub fn is_partial(&self, id: Id) -> bool {
        let Value::Object(o) = self.vm.value(id) else {
            return false;
        };
        self.callee(o.func, &[], 0)
            .is_some_and(|c| helper(&c.module, &c.name) == Some(Helper::Partial))
    }

    /// The positional arguments of a call, borrowed from the machine (a tuple shared by many
    /// calls through the memo is never copied).
    fn args(&self, o: &Object) -> &'v [Id] {
        self.vm.value(o.args).as_seq().unwrap_or(&[])
    }

    fn str_at(&self, id: Id) -> Option<&str> {
        self.vm.value(id).as_str()
    }

    /// `getattr(args[i], args[i+1])` as a name, when both are known.
    fn lookup(&self, args: &[Id], depth: usize) -> Option<Named> {
        let target = self.name_at(*args.first()?, depth + 1)?;
        let attr = self.str_at(*args.get(1)?)?;
        Some(target.attr(attr, &[]))
    }

    fn name_at(&self, id: Id, depth: usize) -> Option<Named> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.vm.value(id) {
            Value::Global(g) => {
                let g = self.vm.global(*g);
                Some(Named {
                    module: g.module.clone(),
                    name: g.name.clone(),
                    via: vec![g.offset],
                })
            }
            Value::Object(o) => {
                let f = self.callee(o.func, self.args(o), depth + 1)?;
                self.object_name(o, f, depth)
            }
            _ => None,
        }
    }

    /// The name of the object `o` created by calling `f` (what its callable resolved to).
    fn object_name(&self, o: &Object, f: Named, depth: usize) -> Option<Named> {
        let args = self.args(o);
        match helper(&f.module, &f.name) {
            Some(Helper::GetAttr) => Some(self.lookup(args, depth)?.with_via(&f.via)),
            Some(Helper::Reconstructor | Helper::NewObj) => {
                Some(self.name_at(*args.first()?, depth + 1)?.with_via(&f.via))
            }
            // `attrgetter('a')(x)` is `x.a` (the getter is an object; `attrgetter('a')`
            // itself, called on the global, is the getter).
            Some(Helper::AttrGetter) if self.object(o.func).is_some() => {
                let getter = self.object(o.func)?;
                let attr = self.str_at(*self.args(getter).first()?)?;
                Some(self.name_at(*args.first()?, depth + 1)?.attr(attr, &f.via))
            }
            _ => Some(f),
        }
    }

    fn object(&self, id: Id) -> Option<&'v Object> {
        match self.vm.value(id) {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// What runs when `func` is called with `call_args`.
    fn callee(&self, func: Id, call_args: &[Id], depth: usize) -> Option<Named> {
        if depth > MAX_DEPTH {
            return None;
        }
        let Some(o) = self.object(func) else {
            return self.name_at(func, depth + 1);
        };
        let maker = self.callee(o.func, self.args(o), depth + 1)?;
        let made = self.args(o);
        match helper(&maker.module, &maker.name) {
            // `partial(f, …)(…)` calls `f` (the last BUILD's state may replace `f`).
            Some(Helper::Partial) => {
                let f = self.partial_func(o).or(made.first().copied())?;
                Some(self.callee(f, &[], depth + 1)?.with_via(&maker.via))
            }
            // `methodcaller('m', …)(x)` calls `x.m(…)`.
            Some(Helper::MethodCaller) => {
                let method = self.str_at(*made.first()?)?;
                let target = self.name_at(*call_args.first()?, depth + 1)?;
                Some(target.attr(method, &maker.via))
            }
            // Calling an object: its class's `__call__`, named by the object.
            _ => self.object_name(o, maker, depth + 1),
        }
    }

    /// The function a partial's BUILD state names: `(func, args, keywords, dict)`.
    fn partial_func(&self, o: &Object) -> Option<Id> {
        let state = o.state?;
        self.vm.value(state).as_seq()?.first().copied()
    }
}

impl Named {
    fn with_via(mut self, via: &[u64]) -> Named {
        self.via.extend_from_slice(via);
        self
    }
}

/// `builtins.object` as a reconstructor's base: `object.__new__(cls)` only.
fn is_object(n: &Named) -> bool {
    matches!(n.module.as_str(), "builtins" | "__builtin__") && n.name == "object"
}
