//! Zero heap allocations per decision in steady state, counted by a global allocator.
//!
//! This file is its own test binary so the counting allocator sees only this test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use ruledeck::vm::{Input, Step};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method delegates to `System`, which upholds `GlobalAlloc`'s contract; the
// counter is a relaxed atomic increment with no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const DECK: &str = r#"
entity user key uid
tag user.risk: int from "risk" cache 3m
tag user.lifecycle: enum(new, active, dormant) from "crm"
tag user.city: text from "profile"
tag user.spend: float from "orders"
tag ctx.channel: enum(app, h5) passthrough
rule user target = user.risk < 30 and user.lifecycle in [new, active] and user.city != "unknown" and user.spend >= 10.5
scene s {
  keys uid
  passes ctx.channel
  instance i -> { count: int, label: text } {
    strategy s1 when user.risk > 90 => { count: 1, label: "s1" }
    strategy s2 when user.risk > 80 => { count: 2, label: "s2" }
    strategy s3 when user.city == "paris" => { count: 3, label: "s3" }
    strategy s4 when user.spend > 1000.0 => { count: 4, label: "s4" }
    strategy s5 when user.lifecycle == dormant => { count: 5, label: "s5" }
    strategy s6 when ctx.channel == h5 => { count: 6, label: "s6" }
    strategy s7 when user.risk == 55 => { count: 7, label: user.city }
    strategy s8 when user.risk between 60 and 70 => { count: user.risk * 2, label: "s8" }
    strategy s9 when target and ctx.channel == app {
      experiment e by uid { control 50% => { count: 3, label: "c" } treatment 50% => { count: 6, label: "t" } }
    }
    default => { count: 0, label: "" }
  }
}
"#;

#[test]
fn steady_state_decisions_do_not_allocate() {
    let program = ruledeck::compile(&[("deck.rule", DECK)]).unwrap();
    let mut req = program.request("s", "i").unwrap();
    let mut needed: Vec<u32> = Vec::with_capacity(16);
    let users = ["u-1001", "u-1002", "u-1003", "u-1004"];
    let mut decide = |uid: &str| -> Option<u32> {
        req.reset();
        req.key("uid", uid).unwrap();
        req.pass("ctx.channel", Input::Text("app")).unwrap();
        while program.run(&mut req).unwrap() == Step::NeedTags {
            needed.clear();
            needed.extend(req.needed().map(|n| n.tag));
            for &tag in &needed {
                let value = match program.tags[tag as usize].name.as_str() {
                    "user.risk" => Input::Int(12),
                    "user.lifecycle" => Input::Text("active"),
                    "user.city" => Input::Text("lyon"),
                    _ => Input::Float(20.0),
                };
                req.supply(tag, Some(value));
            }
        }
        req.outcome().bucket()
    };
    // Warm up: buffers grow to their steady-state sizes.
    for uid in users {
        assert!(decide(uid).is_some(), "the experiment strategy decides");
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..250 {
        for uid in users {
            decide(uid);
        }
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(allocations, 0, "1000 decisions allocated {allocations} times");
}
