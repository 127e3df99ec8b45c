//! The rules Kubernetes sets on the values the manifests of `strimzi` and `deploy` carry, each
//! check saying what is wrong with a value (the caller names the flag or setting).

/// A Kubernetes resource name (RFC 1123 subdomain): lowercase letters, digits, `-` and `.`,
/// starting and ending with a letter or digit, at most 253 characters.
pub fn check_name(name: &str) -> Result<(), String> {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let valid = !name.is_empty()
        && name.len() <= 253
        && edge(name.chars().next())
        && edge(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if valid {
        return Ok(());
    }
    Err(format!(
        "`{name}` is not a Kubernetes resource name: use lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit"
    ))
}

/// A namespace or label-like name (RFC 1123 label): lowercase letters, digits and `-`,
/// starting and ending with a letter or digit, at most 63 characters.
pub fn check_label(name: &str) -> Result<(), String> {
    if name.len() <= 63 && !name.contains('.') && check_name(name).is_ok() {
        return Ok(());
    }
    Err(format!(
        "`{name}` is not a Kubernetes name: use at most 63 lowercase letters, digits and `-`, starting and ending with a letter or digit"
    ))
}

/// A Kubernetes quantity of bytes: a positive number and a binary (`Ki` to `Ei`) or decimal
/// (`k` to `E`) suffix, such as `100Gi`.
pub fn check_quantity(size: &str) -> Result<(), String> {
    quantity(size, false)
}

/// A CPU quantity: `500m`, `1`, `2.5`.
pub fn check_cpu(cpu: &str) -> Result<(), String> {
    quantity(cpu, true)
}

fn quantity(size: &str, cpu: bool) -> Result<(), String> {
    let split = size
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(size.len());
    let (number, unit) = size.split_at(split);
    let positive = number.parse::<f64>().is_ok_and(|n| n > 0.0);
    let units: &[&str] = if cpu {
        &["", "m"]
    } else {
        &[
            "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E",
        ]
    };
    if positive && units.contains(&unit) {
        return Ok(());
    }
    Err(if cpu {
        format!("`{size}` is not a CPU quantity: use cores (`1`, `0.5`) or millicores (`500m`)")
    } else {
        format!(
            "`{size}` is not a Kubernetes quantity: use a number and Ki, Mi, Gi, Ti (or k, M, G, T), such as `100Gi`"
        )
    })
}

/// A container image reference: no whitespace, not empty, no scheme.
pub fn check_image(image: &str) -> Result<(), String> {
    if image.is_empty() || image.chars().any(char::is_whitespace) || image.contains("://") {
        return Err(format!(
            "`{image}` is not an image reference: use `registry/name:tag`, such as `ghcr.io/acme/orders:1.0`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_labels_and_quantities() {
        assert!(check_name("events.kafka-1").is_ok());
        assert!(check_name("Events").is_err());
        assert!(check_label("orders").is_ok());
        assert!(check_label("a.b").is_err());
        assert!(check_label(&"a".repeat(64)).is_err());
        assert!(check_quantity("100Gi").is_ok());
        assert!(check_quantity("100").is_err());
        assert!(check_quantity("0Gi").is_err());
        assert!(check_cpu("500m").is_ok());
        assert!(check_cpu("2").is_ok());
        assert!(check_cpu("2Gi").is_err());
        assert!(check_image("ghcr.io/acme/orders:1.0").is_ok());
        assert!(check_image("a b").is_err());
        assert!(check_image("").is_err());
    }
}
