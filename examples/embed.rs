//! Embedding ruledeck: compile a deck, then decide with the suspend/resume loop.
//!
//! Run with `cargo run --example embed`.

use ruledeck::{Input, Step};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files: Vec<(String, String)> = ["catalog", "rules", "payment", "traffic"]
        .iter()
        .map(|f| {
            let path = format!("{}/examples/deck/{f}.rule", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).expect("example deck");
            (path, text)
        })
        .collect();
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    let program = ruledeck::compile(&refs)?;

    let mut req = program.request("payment", "installments")?;
    req.key("uid", "u-1001")?.key("orderid", "o-1")?.pass("ctx.channel", Input::Text("app"))?;
    req.now(1_795_000_000);
    loop {
        match req.run()? {
            Step::Done => break,
            Step::NeedTags => {
                // A real host batches these per provider; here a tiny in-memory table.
                let needed: Vec<(u32, String)> = req.needed().map(|n| (n.tag, n.name.to_string())).collect();
                for (tag, name) in needed {
                    println!("fetching {name}");
                    let value = match name.as_str() {
                        "user.risk_score" => Some(Input::Int(12)),
                        "user.lifecycle" => Some(Input::Text("active")),
                        _ => None,
                    };
                    req.supply(tag, value);
                }
            }
        }
    }
    let outcome = req.outcome();
    println!(
        "strategy {:?} experiment {:?} group {:?} bucket {:?}",
        outcome.strategy(),
        outcome.experiment(),
        outcome.group(),
        outcome.bucket()
    );
    for (name, value) in outcome.fields() {
        println!("  {name} = {value:?}");
    }
    Ok(())
}
