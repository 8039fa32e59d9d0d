//! The function as the macro sees it, keeping the user's tokens for spans.

use syn::{FnArg, GenericArgument, Ident, ItemFn, Pat, PathArguments, ReturnType, Type};

/// A function under `#[task]`.
pub(crate) struct Task<'a> {
    pub(crate) item: &'a ItemFn,
    pub(crate) params: Vec<Param<'a>>,
    pub(crate) output: Output<'a>,
}

/// One parameter; `ident` is `None` when the pattern is not a plain name.
pub(crate) struct Param<'a> {
    pub(crate) arg: &'a FnArg,
    pub(crate) ident: Option<&'a Ident>,
    pub(crate) ty: Option<&'a Type>,
}

/// What the function returns.
pub(crate) enum Output<'a> {
    /// No `->`: the task's output is `()`.
    Unit,
    /// `-> T`: the task's output is `T`.
    Plain(&'a Type),
    /// `-> Result<T, E>` (or an alias `Result<T>`): the output is `T`, the
    /// error becomes a `TaskError`.
    Fallible { ok: &'a Type },
}

impl<'a> Task<'a> {
    pub(crate) fn from_item(item: &'a ItemFn) -> Self {
        let params = item
            .sig
            .inputs
            .iter()
            .map(|arg| match arg {
                FnArg::Typed(pt) => Param {
                    arg,
                    ident: plain_ident(&pt.pat),
                    ty: Some(&pt.ty),
                },
                _ => Param {
                    arg,
                    ident: None,
                    ty: None,
                },
            })
            .collect();
        let output = match &item.sig.output {
            ReturnType::Default => Output::Unit,
            ReturnType::Type(_, ty) => match result_ok_type(ty) {
                Some(ok) => Output::Fallible { ok },
                None => Output::Plain(ty),
            },
        };
        Task {
            item,
            params,
            output,
        }
    }

    pub(crate) fn ident(&self) -> &'a Ident {
        &self.item.sig.ident
    }

    pub(crate) fn is_async(&self) -> bool {
        self.item.sig.asyncness.is_some()
    }
}

/// `x` or `mut x`; any other pattern is refused by `valid`.
fn plain_ident(pat: &Pat) -> Option<&Ident> {
    match pat {
        Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => Some(&p.ident),
        _ => None,
    }
}

/// `T` when `ty` is `Result<T, ..>` by its last path segment.
fn result_ok_type(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(ok) => Some(ok),
        _ => None,
    }
}
