//! The context every macro carries while it reads its input (as serde_derive's `Ctxt`): the
//! errors collected so far, keys that may be given once, and the nearest known key for a
//! misspelt one. Errors are collected, never panicked, so a user sees every mistake in one
//! build.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::Path;

/// Collected errors; turned into one `compile_error!` each.
///
/// Most errors stop the expansion (a stub is emitted instead, see `fallback.rs`). An error
/// [`beside`](Self::beside) the expansion does not: the input is complete and expands as it
/// would without the mistake (an attribute the derive would ignore), so the one error stands
/// alone instead of cascading through everything that uses the generated impls.
#[derive(Default)]
pub struct Errors {
    stopping: Option<syn::Error>,
    beside: Option<syn::Error>,
}

fn combine(all: &mut Option<syn::Error>, error: syn::Error) {
    match all {
        Some(all) => all.combine(error),
        None => *all = Some(error),
    }
}

impl Errors {
    pub fn push(&mut self, error: syn::Error) {
        combine(&mut self.stopping, error);
    }

    pub fn error(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// One error covering two places of the input, `first` before `second` (a duplicate and
    /// its original): rustc marks the range from one to the other.
    pub fn twice(&mut self, first: Span, second: Span, message: impl std::fmt::Display) {
        let (first, second) = (
            proc_macro2::Ident::new("first", first),
            proc_macro2::Ident::new("second", second),
        );
        self.error(quote::quote!(#first #second), message);
    }

    /// An error reported beside the full expansion.
    pub fn beside(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        combine(&mut self.beside, syn::Error::new_spanned(tokens, message));
    }

    /// Records the error of a fallible step and returns its value, if any.
    pub fn ok<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|e| self.push(e)).ok()
    }

    /// Whether nothing stops the expansion.
    pub fn is_empty(&self) -> bool {
        self.stopping.is_none()
    }

    pub fn into_compile_errors(self) -> TokenStream {
        let mut all = self.stopping;
        if let Some(beside) = self.beside {
            combine(&mut all, beside);
        }
        all.map(|e| e.to_compile_error()).unwrap_or_default()
    }
}

/// A key that may be given once. A second one is one error covering both places.
pub struct Once<T> {
    key: &'static str,
    value: Option<(T, TokenStream)>,
}

impl<T> Once<T> {
    pub fn new(key: &'static str) -> Self {
        Once { key, value: None }
    }

    pub fn set(&mut self, errors: &mut Errors, at: &Path, value: T) {
        if let Some((_, first)) = &self.value {
            let key = self.key;
            errors.error(
                quote::quote!(#first #at),
                format!("duplicate key `{key}` (both are marked); give it once"),
            );
        } else {
            self.value = Some((value, at.to_token_stream()));
        }
    }

    pub fn get(&self) -> Option<&T> {
        self.value.as_ref().map(|(v, _)| v)
    }

    pub fn take(self) -> Option<T> {
        self.value.map(|(v, _)| v)
    }
}

/// The expected key (from a list such as "`a`, `b`") within two edits of `key`, if one is.
pub fn closest<'e>(key: &str, expected: &'e str) -> Option<&'e str> {
    expected
        .split(", ")
        .map(|k| k.trim_matches('`'))
        .map(|k| (edit_distance(key, k), k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}
