use super::*;

#[derive(Component, Serialize, Debug)]
struct Health(u32);

#[derive(Component, Serialize, Debug)]
struct Name(String);

#[derive(Component, Debug)]
struct Hidden;

#[derive(Resource, Serialize)]
struct Clock {
    minutes: u32,
}

fn world() -> (World, InspectRegistry, Entity, Entity) {
    let mut world = World::new();
    let a = world.spawn((Health(10), Name("ann".into()))).id();
    let b = world.spawn((Health(3), Hidden)).id();
    world.spawn(Name("no health".into()));
    world.insert_resource(Clock { minutes: 42 });
    let mut reg = InspectRegistry::default();
    reg.add_component::<Health>();
    reg.add_component::<Name>();
    reg.add_resource::<Clock>();
    (world, reg, a, b)
}

fn path<T>() -> String {
    std::any::type_name::<T>().to_owned()
}

#[test]
fn query_components_filters_option_and_has() {
    let (mut w, reg, a, b) = world();
    let r = dispatch(
        &mut w,
        &reg,
        "world.query",
        json!({"data": {"components": [path::<Health>()], "option": [path::<Name>()], "has": [path::<Name>()]}}),
    )
    .unwrap();
    let rows = r.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["entity"], a.to_bits());
    assert_eq!(rows[0]["components"][path::<Health>()], 10);
    assert_eq!(rows[0]["components"][path::<Name>()], "ann");
    assert_eq!(rows[0]["has"][path::<Name>()], true);
    assert_eq!(rows[1]["entity"], b.to_bits());
    assert!(rows[1]["components"].get(path::<Name>()).is_none());
    assert_eq!(rows[1]["has"][path::<Name>()], false);

    // filter.without and short names
    let r = dispatch(
        &mut w,
        &reg,
        "world.query",
        json!({"data": {"components": ["Health"]}, "filter": {"without": ["Name"]}}),
    )
    .unwrap();
    assert_eq!(r.as_array().unwrap().len(), 1);
    assert_eq!(r[0]["entity"], b.to_bits());
    assert!(r[0].get("has").is_none(), "omitted when not asked for");

    // option "all"
    let r = dispatch(
        &mut w,
        &reg,
        "world.query",
        json!({"data": {"option": "all"}, "filter": {"with": ["Name"]}}),
    )
    .unwrap();
    assert_eq!(r.as_array().unwrap().len(), 2);
}

#[test]
fn strict_refuses_unknown_types_lenient_skips_them() {
    let (mut w, reg, _, _) = world();
    let e = dispatch(
        &mut w,
        &reg,
        "world.query",
        json!({"data": {"components": ["nope::Thing"]}, "strict": true}),
    )
    .unwrap_err();
    assert_eq!(e.code, codes::COMPONENT_ERROR);
    let r = dispatch(
        &mut w,
        &reg,
        "world.query",
        json!({"data": {"components": ["nope::Thing"]}}),
    )
    .unwrap();
    assert_eq!(r, json!([]));
    let e = dispatch(&mut w, &reg, "world.query", json!({"data": 5})).unwrap_err();
    assert_eq!(e.code, codes::INVALID_PARAMS);
}

#[test]
fn get_components_lenient_and_strict() {
    let (mut w, reg, _, b) = world();
    let r = dispatch(
        &mut w,
        &reg,
        "world.get_components",
        json!({"entity": b.to_bits(), "components": ["Health", "Name", "Bogus"]}),
    )
    .unwrap();
    assert_eq!(r["components"][path::<Health>()], 3);
    assert_eq!(
        r["errors"][path::<Name>()]["code"],
        codes::COMPONENT_NOT_PRESENT
    );
    assert_eq!(r["errors"]["Bogus"]["code"], codes::COMPONENT_ERROR);
    let e = dispatch(
        &mut w,
        &reg,
        "world.get_components",
        json!({"entity": b.to_bits(), "components": ["Name"], "strict": true}),
    )
    .unwrap_err();
    assert_eq!(e.code, codes::COMPONENT_NOT_PRESENT);
    let r = dispatch(
        &mut w,
        &reg,
        "world.get_components",
        json!({"entity": b.to_bits(), "components": ["Health"], "strict": true}),
    )
    .unwrap();
    assert_eq!(r, json!({ path::<Health>(): 3 }));
    let e = dispatch(
        &mut w,
        &reg,
        "world.get_components",
        json!({"entity": 999_999_999u64, "components": []}),
    )
    .unwrap_err();
    assert_eq!(e.code, codes::ENTITY_NOT_FOUND);
}

#[test]
fn lists_resources_schedules_and_discovery() {
    let (mut w, mut reg, a, _) = world();
    let all = dispatch(&mut w, &reg, "world.list_components", Value::Null).unwrap();
    assert_eq!(all, json!([path::<Health>(), path::<Name>()]));
    let on_a = dispatch(
        &mut w,
        &reg,
        "world.list_components",
        json!({"entity": a.to_bits()}),
    )
    .unwrap();
    assert_eq!(on_a.as_array().unwrap().len(), 2);
    assert_eq!(
        dispatch(&mut w, &reg, "world.list_resources", Value::Null).unwrap(),
        json!([path::<Clock>()])
    );
    let r = dispatch(
        &mut w,
        &reg,
        "world.get_resources",
        json!({"resource": "Clock"}),
    )
    .unwrap();
    assert_eq!(r, json!({"value": {"minutes": 42}}));
    let e = dispatch(
        &mut w,
        &reg,
        "world.get_resources",
        json!({"resource": "Nope"}),
    )
    .unwrap_err();
    assert_eq!(e.code, codes::COMPONENT_ERROR);

    reg.add_method("health.count", |w, _| {
        Ok(json!(w.query::<&Health>().iter(w).count()))
    });
    assert_eq!(
        dispatch(&mut w, &reg, "health.count", Value::Null).unwrap(),
        json!(2)
    );
    let d = dispatch(&mut w, &reg, "rpc.discover", Value::Null).unwrap();
    let names: Vec<&str> = d["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for m in BRP_METHODS {
        assert!(names.contains(m), "{m}");
    }
    assert!(names.contains(&"health.count"));
    assert_eq!(
        dispatch(&mut w, &reg, "no.such", Value::Null)
            .unwrap_err()
            .code,
        codes::METHOD_NOT_FOUND
    );
}

#[test]
fn short_names_must_be_unique() {
    assert_eq!(short_name("a::b::C"), "C");
    assert_eq!(short_name("a::b::C<d::E>"), "C<d::E>");
    let keys = [
        "x::Thing".to_owned(),
        "y::Thing".to_owned(),
        "z::Other".to_owned(),
    ];
    assert_eq!(resolve(keys.iter(), "Thing"), None, "ambiguous");
    assert_eq!(resolve(keys.iter(), "Other"), Some("z::Other"));
    assert_eq!(resolve(keys.iter(), "x::Thing"), Some("x::Thing"));
}

#[tokio::test]
async fn calls_are_answered_on_the_tick_thread_even_while_paused() {
    let (inspector, plugin) = channel(8);
    let plugin = Mutex::new(Some(plugin));
    let tick = tick::TickLoop::spawn(100.0, move || {
        let mut app = App::new();
        if let Some(p) = plugin.lock().unwrap().take() {
            app.add_plugins(p);
        }
        app.inspect_component::<Health>();
        app.add_systems(bevy_app::FixedUpdate, |mut q: Query<&mut Health>| {
            for mut h in &mut q {
                h.0 = h.0.max(7);
            }
        });
        app.world_mut().spawn(Health(7));
        app
    })
    .unwrap();
    let rows = inspector
        .call("world.query", json!({"data": {"components": ["Health"]}}))
        .await
        .unwrap();
    assert_eq!(rows[0]["components"][path::<Health>()], 7);
    let schedules = inspector.call("schedule.list", Value::Null).await.unwrap();
    let names: Vec<&str> = schedules
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["schedule"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Main") && names.contains(&"FixedUpdate"),
        "{names:?}"
    );

    tick.control().pause();
    let r = inspector
        .call("world.list_components", Value::Null)
        .await
        .unwrap();
    assert_eq!(r, json!([path::<Health>()]));
    tick.stop().unwrap();
    let e = inspector
        .call("world.list_components", Value::Null)
        .await
        .unwrap_err();
    assert_eq!(e.code, codes::INTERNAL_ERROR, "{e}");
}
