//! Parsing the attribute's arguments: `#[task(env = ENV, retries = 3, ...)]`.

use proc_macro2::TokenStream;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Ident, Lit, LitInt, LitStr, Path, Token};

const VALID_KEYS: &str =
    "`env`, `name`, `retries`, `timeout`, `backoff`, `cache`, `cache_version`, `cache_ignore`";

/// The parsed attribute arguments.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) env: Option<Path>,
    pub(crate) name: Option<LitStr>,
    pub(crate) retries: Option<u32>,
    /// The limit in milliseconds, and the literal it came from (for spans).
    pub(crate) timeout: Option<(u64, LitStr)>,
    /// A constant expression of type `Backoff`.
    pub(crate) backoff: Option<Expr>,
    /// `"auto"`, `"override"` or `"disable"`, as the variant's name.
    pub(crate) cache: Option<Ident>,
    pub(crate) cache_version: Option<LitStr>,
    /// Parameters left out of the cache key.
    pub(crate) cache_ignore: Option<Vec<Ident>>,
}

/// One `key = value` pair, before its value is checked.
struct Pair {
    key: Ident,
    value: Expr,
}

impl Parse for Pair {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key: Ident = input.parse()?;
        input.parse::<Token![=]>()?;
        let value: Expr = input.parse()?;
        Ok(Pair { key, value })
    }
}

impl Args {
    /// Parses every pair, collecting all errors rather than the first.
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Args> {
        let pairs = Punctuated::<Pair, Token![,]>::parse_terminated.parse2(tokens)?;
        let mut args = Args::default();
        let mut errors: Option<syn::Error> = None;
        let mut push = |e: syn::Error| match &mut errors {
            Some(all) => all.combine(e),
            None => errors = Some(e),
        };
        for pair in pairs {
            if let Err(e) = args.set(pair) {
                push(e);
            }
        }
        match errors {
            Some(e) => Err(e),
            None => Ok(args),
        }
    }

    fn set(&mut self, Pair { key, value }: Pair) -> syn::Result<()> {
        match key.to_string().as_str() {
            "env" => set_once(&mut self.env, &key, || env_path(value)),
            "name" => set_once(&mut self.name, &key, || {
                let lit = string_literal(&key, value)?;
                check_task_name(&lit)?;
                Ok(lit)
            }),
            "retries" => set_once(&mut self.retries, &key, || retries(value)),
            "backoff" => set_once(&mut self.backoff, &key, || Ok(value)),
            "timeout" => set_once(&mut self.timeout, &key, || {
                let lit = string_literal(&key, value)?;
                let millis = parse_duration_millis(&lit.value())
                    .map_err(|why| syn::Error::new_spanned(&lit, why))?;
                Ok((millis, lit))
            }),
            "cache" => set_once(&mut self.cache, &key, || {
                let lit = string_literal(&key, value)?;
                cache_variant(&lit)
            }),
            "cache_version" => set_once(&mut self.cache_version, &key, || {
                let lit = string_literal(&key, value)?;
                if lit.value().trim().is_empty() {
                    return Err(syn::Error::new_spanned(
                        lit,
                        "`cache_version` cannot be empty: e.g. `cache_version = \"v2\"`",
                    ));
                }
                Ok(lit)
            }),
            "cache_ignore" => set_once(&mut self.cache_ignore, &key, || ignored_params(value)),
            _ => Err(syn::Error::new_spanned(
                &key,
                format!("unknown key `{key}`: the valid keys are {VALID_KEYS}"),
            )),
        }
    }
}

/// Sets `slot` from `parse`, or errors on the key if it was given before.
fn set_once<T>(
    slot: &mut Option<T>,
    key: &Ident,
    parse: impl FnOnce() -> syn::Result<T>,
) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new_spanned(key, format!("`{key}` given twice")));
    }
    *slot = Some(parse()?);
    Ok(())
}

fn env_path(value: Expr) -> syn::Result<Path> {
    match value {
        Expr::Path(p) if p.qself.is_none() => Ok(p.path),
        other => Err(syn::Error::new_spanned(
            other,
            "`env` takes the path of a `static TaskEnvironment`: declare \
             `static MY_ENV: TaskEnvironment = TaskEnvironment::new(\"my_env\");` \
             and write `env = MY_ENV`",
        )),
    }
}

fn string_literal(key: &Ident, value: Expr) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{key}` takes a string literal, e.g. `{key} = \"...\"`"),
        )),
    }
}

fn cache_variant(lit: &LitStr) -> syn::Result<Ident> {
    let variant = match lit.value().as_str() {
        "auto" => "Auto",
        "override" => "Override",
        "disable" => "Disable",
        _ => {
            return Err(syn::Error::new_spanned(
                lit,
                "`cache` is one of \"auto\" (reuse stored outputs), \"override\" (always \
                 run and store) or \"disable\"",
            ))
        }
    };
    Ok(Ident::new(variant, lit.span()))
}

/// `[a, b]`: parameter names, checked against the function later.
fn ignored_params(value: Expr) -> syn::Result<Vec<Ident>> {
    let help =
        "`cache_ignore` takes a list of parameter names, e.g. `cache_ignore = [verbose, client]`";
    let Expr::Array(array) = value else {
        return Err(syn::Error::new_spanned(value, help));
    };
    array
        .elems
        .iter()
        .map(|elem| match elem {
            Expr::Path(p) if p.qself.is_none() => p
                .path
                .get_ident()
                .cloned()
                .ok_or_else(|| syn::Error::new_spanned(elem, help)),
            other => Err(syn::Error::new_spanned(other, help)),
        })
        .collect()
}

fn retries(value: Expr) -> syn::Result<u32> {
    let lit: Option<LitInt> = match &value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => Some(i.clone()),
        _ => None,
    };
    let Some(lit) = lit else {
        return Err(syn::Error::new_spanned(
            value,
            "`retries` takes a whole number, e.g. `retries = 3`",
        ));
    };
    lit.base10_parse::<u32>().map_err(|_| {
        syn::Error::new_spanned(lit, "`retries` must fit in a u32, e.g. `retries = 3`")
    })
}

fn check_task_name(lit: &LitStr) -> syn::Result<()> {
    let name = lit.value();
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(syn::Error::new_spanned(
            lit,
            "a task name uses letters, digits, `_` and `-` only (the environment \
             name and a dot are added in front), e.g. `name = \"fetch_page\"`",
        ))
    }
}

/// Parses `"250ms"`, `"10s"`, `"5m"`, `"2h"` into milliseconds.
pub(crate) fn parse_duration_millis(text: &str) -> Result<u64, String> {
    let help = "write a whole number and a unit, one of `ms`, `s`, `m`, `h`: e.g. \"10s\"";
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("timeout {text:?} has no unit: {help}"))?;
    let (digits, unit) = text.split_at(split);
    let amount: u64 = digits
        .parse()
        .map_err(|_| format!("timeout {text:?} does not start with a number: {help}"))?;
    let factor = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => {
            return Err(format!(
                "timeout {text:?} has an unknown unit `{unit}`: {help}"
            ))
        }
    };
    if amount == 0 {
        return Err(format!("timeout {text:?} is zero: {help}"));
    }
    amount
        .checked_mul(factor)
        .ok_or_else(|| format!("timeout {text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_millis("250ms"), Ok(250));
        assert_eq!(parse_duration_millis("10s"), Ok(10_000));
        assert_eq!(parse_duration_millis("5m"), Ok(300_000));
        assert_eq!(parse_duration_millis("2h"), Ok(7_200_000));
        for bad in ["10", "s", "10 sec", "1.5s", "0s", ""] {
            assert!(parse_duration_millis(bad).is_err(), "{bad}");
        }
    }
}
