//! Secrets out of text meant for people: logs and `check-config`.

use super::REDACTED;

/// `url` with its userinfo (`user:password@`) replaced by `<redacted>`; text that is not
/// a URL is returned whole only if it has no `@` that could hide credentials.
pub fn url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) if parsed.username().is_empty() && parsed.password().is_none() => url.to_owned(),
        Ok(parsed) => {
            let host = parsed.host_str().unwrap_or_default();
            let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
            let rest = &parsed[url::Position::AfterPort..];
            format!("{}://{REDACTED}@{host}{port}{rest}", parsed.scheme())
        }
        Err(_) if url.contains('@') => REDACTED.to_owned(),
        Err(_) => url.to_owned(),
    }
}

/// `text` (an error message, say) with the user name and password of `url` replaced by
/// `<redacted>` wherever they appear, in clear or percent-encoded.
pub fn url_credentials_in(text: &str, url: &str) -> String {
    let Ok(parsed) = url::Url::parse(url) else {
        return text.to_owned();
    };
    let mut secrets: Vec<String> = [Some(parsed.username()), parsed.password()]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .flat_map(|s| {
            let decoded = percent_decode(s);
            [s.to_owned(), decoded]
        })
        .collect();
    // Longest first, so a password that contains the user name is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.iter().fold(text.to_owned(), |t, secret| {
        t.replace(secret.as_str(), REDACTED)
    })
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_cut_out_of_messages() {
        let relay = "https://cam:p%40ss@relay.example.org/";
        assert_eq!(
            url_credentials_in(
                "error sending request for https://cam:p%40ss@relay.example.org/ (p@ss)",
                relay
            ),
            "error sending request for https://<redacted>:<redacted>@relay.example.org/ (<redacted>)"
        );
        assert_eq!(
            url_credentials_in("timed out", "http://relay/"),
            "timed out"
        );
    }

    #[test]
    fn userinfo_is_redacted_and_the_rest_kept() {
        assert_eq!(
            url("https://cam:s3cret@relay.example.org:3000/path?q=1"),
            "https://<redacted>@relay.example.org:3000/path?q=1"
        );
        assert_eq!(url("wss://only-user@relay/"), "wss://<redacted>@relay/");
    }

    #[test]
    fn urls_without_credentials_are_unchanged() {
        assert_eq!(url("http://127.0.0.1:3000"), "http://127.0.0.1:3000");
        assert_eq!(url("not a url"), "not a url");
    }

    #[test]
    fn unparsable_text_with_an_at_sign_is_redacted_whole() {
        assert_eq!(url("http://cam:s3cret@[::1"), REDACTED);
    }
}
