//! Container names: Docker's `adjective_surname` generator and name validation.

const ADJECTIVES: &[&str] = &[
    "admiring", "adoring", "affectionate", "agitated", "amazing", "angry", "awesome",
    "beautiful", "blissful", "bold", "boring", "brave", "busy", "charming", "clever", "compassionate",
    "competent", "condescending", "confident", "cool", "cranky", "crazy", "dazzling", "determined",
    "distracted", "dreamy", "eager", "ecstatic", "elastic", "elated", "elegant", "eloquent", "epic",
    "exciting", "fervent", "festive", "flamboyant", "focused", "friendly", "frosty", "funny",
    "gallant", "gifted", "goofy", "gracious", "great", "happy", "hardcore", "heuristic", "hopeful",
    "hungry", "infallible", "inspiring", "intelligent", "interesting", "jolly", "jovial", "keen",
    "kind", "laughing", "loving", "lucid", "magical", "modest", "musing", "mystifying", "naughty",
    "nervous", "nice", "nifty", "nostalgic", "objective", "optimistic", "peaceful", "pedantic",
    "pensive", "practical", "priceless", "quirky", "quizzical", "recursing", "relaxed", "reverent",
    "romantic", "sad", "serene", "sharp", "silly", "sleepy", "stoic", "strange", "stupefied",
    "suspicious", "sweet", "tender", "thirsty", "trusting", "unruffled", "upbeat", "vibrant",
    "vigilant", "vigorous", "wizardly", "wonderful", "xenodochial", "youthful", "zealous", "zen",
];

const SURNAMES: &[&str] = &[
    "agnesi", "albattani", "allen", "almeida", "archimedes", "ardinghelli", "aryabhata", "austin",
    "babbage", "banach", "bardeen", "bartik", "bassi", "bell", "benz", "bhabha", "black",
    "blackwell", "bohr", "booth", "borg", "bose", "boyd", "brahmagupta", "brattain", "brown",
    "burnell", "cannon", "carson", "cartwright", "cerf", "chandrasekhar", "chatelet", "chaum",
    "clarke", "colden", "cori", "cray", "curie", "darwin", "davinci", "dijkstra", "dubinsky",
    "easley", "edison", "einstein", "elgamal", "elion", "engelbart", "euclid", "euler", "faraday",
    "feistel", "fermat", "fermi", "feynman", "franklin", "gagarin", "galileo", "gates", "gauss",
    "germain", "goldberg", "goldstine", "goldwasser", "golick", "goodall", "hamilton", "hawking",
    "heisenberg", "hellman", "hermann", "herschel", "hertz", "hodgkin", "hofstadter", "hoover",
    "hopper", "hugle", "hypatia", "jackson", "jang", "jennings", "jepsen", "johnson", "joliot",
    "jones", "kalam", "kapitsa", "kare", "keldysh", "keller", "kepler", "khorana", "kilby",
    "kirch", "knuth", "kowalevski", "lalande", "lamarr", "lamport", "leakey", "leavitt", "lehmann",
    "lewin", "lichterman", "liskov", "lovelace", "lumiere", "mahavira", "margulis", "matsumoto",
    "maxwell", "mayer", "mccarthy", "mcclintock", "mclaren", "mclean", "mcnulty", "meitner",
    "mendel", "merkle", "mestorf", "mirzakhani", "montalcini", "moore", "morse", "murdock",
    "napier", "nash", "neumann", "newton", "nightingale", "nobel", "noether", "northcutt", "noyce",
    "panini", "pare", "pascal", "pasteur", "payne", "perlman", "pike", "poincare", "poitras",
    "ptolemy", "raman", "ramanujan", "rhodes", "ride", "ritchie", "robinson", "roentgen",
    "rosalind", "rubin", "saha", "sammet", "sanderson", "satoshi", "shamir", "shannon", "shaw",
    "shirley", "shockley", "sinoussi", "snyder", "solomon", "spence", "stonebraker", "sutherland",
    "swanson", "swartz", "swirles", "taussig", "tesla", "tharp", "thompson", "torvalds", "tu",
    "turing", "varahamihira", "vaughan", "villani", "visvesvaraya", "volhard", "wescoff", "wilbur",
    "wiles", "williams", "williamson", "wilson", "wing", "wozniak", "wright", "wu", "yalow",
    "yonath", "zhukovsky",
];

fn random_index(len: usize) -> usize {
    let mut b = [0u8; 8];
    // Without entropy we still produce a valid name; collisions are retried by the caller.
    let _ = getrandom::fill(&mut b);
    (u64::from_le_bytes(b) % len as u64) as usize
}

/// A name like `focused_turing`. `retry` > 0 appends a digit, as Docker does after a clash.
pub fn generate(retry: u32) -> String {
    loop {
        let name = format!(
            "{}_{}",
            ADJECTIVES[random_index(ADJECTIVES.len())],
            SURNAMES[random_index(SURNAMES.len())]
        );
        // Steve Wozniak is not boring (Docker's own rule).
        if name == "boring_wozniak" {
            continue;
        }
        if retry > 0 {
            return format!("{name}{}", random_index(10));
        }
        return name;
    }
}

/// Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, with an optional leading `/`.
pub fn validate(name: &str) -> Result<String, String> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let mut chars = bare.chars();
    let ok = match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {
            let rest: Vec<char> = chars.collect();
            !rest.is_empty()
                && rest
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        }
        _ => false,
    };
    if ok {
        Ok(bare.to_string())
    } else {
        Err(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_valid() {
        for i in 0..200 {
            let n = generate(i % 2);
            assert!(validate(&n).is_ok(), "{n}");
            assert!(n.contains('_'));
        }
    }

    #[test]
    fn validation() {
        assert_eq!(validate("/web").unwrap(), "web");
        assert!(validate("a").is_err());
        assert!(validate("-x").is_err());
        assert!(validate("bad name").is_err());
        assert!(validate("ok.name-1_2").is_ok());
    }
}
