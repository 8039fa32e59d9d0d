//! Every rule a task function must follow; all violations are reported at once.

use crate::args::Args;
use crate::ast::{Output, Task};
use quote::ToTokens;
use syn::{FnArg, Safety, Type};

/// The most parameters a task may take (serde encodes tuples up to 16).
const MAX_PARAMS: usize = 16;

/// Checks the attribute's arguments against the function: every name in
/// `cache_ignore` must be a parameter, named once.
pub(crate) fn check_args(args: &Args, task: &Task<'_>) -> syn::Result<()> {
    let mut errors = Errors::default();
    let names: Vec<String> = task
        .params
        .iter()
        .filter_map(|p| p.ident.map(|i| i.to_string()))
        .collect();
    let ignored = args.cache_ignore.as_deref().unwrap_or_default();
    for (i, ident) in ignored.iter().enumerate() {
        let name = ident.to_string();
        if !names.contains(&name) {
            errors.push(
                ident,
                format!(
                    "`cache_ignore` names `{name}`, which is not a parameter of this task; \
                     the parameters are: {}",
                    if names.is_empty() {
                        "(none)".to_owned()
                    } else {
                        names.join(", ")
                    }
                ),
            );
        } else if ignored[..i].iter().any(|earlier| *earlier == name) {
            errors.push(ident, format!("`{name}` is named twice in `cache_ignore`"));
        }
    }
    errors.finish()
}

/// Checks `task`, returning every violation combined into one error.
pub(crate) fn check(task: &Task<'_>) -> syn::Result<()> {
    let mut errors = Errors::default();
    let sig = &task.item.sig;

    if let Some(constness) = &sig.constness {
        errors.push(constness, "a task cannot be a `const fn`: remove `const`");
    }
    if let Safety::Unsafe(unsafety) = &sig.safety {
        errors.push(
            unsafety,
            "a task cannot be `unsafe`: make the task safe and call the unsafe code inside its body",
        );
    }
    if let Some(abi) = &sig.abi {
        errors.push(abi, "a task cannot have an `extern` ABI: remove it");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(
            &sig.generics,
            "a task cannot be generic: its inputs and output must be concrete types to be \
             serialized; write one task per concrete type",
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(variadic, "a task cannot be variadic");
    }
    if task.params.len() > MAX_PARAMS {
        errors.push(
            &sig.inputs,
            format!(
                "a task takes at most {MAX_PARAMS} parameters: group some into a struct \
                 that derives `Serialize` and `Deserialize`"
            ),
        );
    }
    for param in &task.params {
        match param.arg {
            FnArg::Receiver(receiver) => errors.push(
                receiver,
                "a task cannot take `self`: make it a free function and pass the value \
                 as an ordinary parameter",
            ),
            FnArg::Typed(pt) => {
                if param.ident.is_none() {
                    errors.push(
                        &pt.pat,
                        "task parameters must be plain names: bind a name, e.g. \
                         `pair: (i64, i64)`, and destructure inside the body",
                    );
                }
                check_type(&mut errors, &pt.ty, "parameters are taken by value");
            }
        }
    }
    match task.output {
        Output::Plain(ty) | Output::Fallible { ok: ty } => {
            check_type(&mut errors, ty, "outputs are returned by value")
        }
        Output::Unit => {}
    }
    errors.finish()
}

fn check_type(errors: &mut Errors, ty: &Type, rule: &str) {
    match ty {
        Type::Reference(reference) => {
            let instead = owned_suggestion(&reference.elem);
            errors.push(
                ty,
                format!("task {rule}: use `{instead}` instead of `{}`", tokens(ty)),
            );
        }
        Type::ImplTrait(_) => errors.push(
            ty,
            format!(
                "task {rule} with a concrete type: replace `impl Trait` with the type \
                 itself (e.g. `Vec<String>` instead of `impl IntoIterator<Item = String>`)"
            ),
        ),
        Type::Infer(_) => errors.push(ty, "task types must be written out: replace `_`"),
        Type::Paren(inner) => check_type(errors, &inner.elem, rule),
        _ => {}
    }
}

/// The owned type to write instead of a reference to `elem`.
fn owned_suggestion(elem: &Type) -> String {
    let text = tokens(elem);
    match text.as_str() {
        "str" => "String".to_owned(),
        "Path" | "std::path::Path" => "PathBuf".to_owned(),
        _ => match elem {
            Type::Slice(slice) => format!("Vec<{}>", tokens(&slice.elem)),
            _ => text,
        },
    }
}

/// The tokens as a person writes them: `&str`, not `& str`.
fn tokens(t: &impl ToTokens) -> String {
    let mut text = t.to_token_stream().to_string();
    for (spaced, tight) in [
        ("& ", "&"),
        (" <", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" ,", ","),
        (" :: ", "::"),
        (":: ", "::"),
        ("' ", "'"),
    ] {
        text = text.replace(spaced, tight);
    }
    text
}

#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, at: impl ToTokens, message: impl std::fmt::Display) {
        let e = syn::Error::new_spanned(at, message);
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}
