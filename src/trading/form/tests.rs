use super::*;

fn d(s: &str) -> Decimal {
    Decimal::from_str_exact(s).expect("decimal")
}

fn input(fields: &[(&str, &str)]) -> OrderInput {
    let mut i = OrderInput {
        symbol: "aapl".into(),
        side: "buy".into(),
        qty: "10".into(),
        order_type: "market".into(),
        time_in_force: "day".into(),
        ..OrderInput::default()
    };
    for (name, value) in fields {
        let v = (*value).to_owned();
        match *name {
            "symbol" => i.symbol = v,
            "side" => i.side = v,
            "qty" => i.qty = v,
            "notional" => i.notional = v,
            "order_type" => i.order_type = v,
            "limit_price" => i.limit_price = v,
            "stop_price" => i.stop_price = v,
            "trail_percent" => i.trail_percent = v,
            "trail_amount" => i.trail_amount = v,
            "time_in_force" => i.time_in_force = v,
            "extended_hours" => i.extended_hours = v == "on",
            "take_profit" => i.take_profit = v,
            "stop_loss" => i.stop_loss = v,
            other => panic!("no field {other}"),
        }
    }
    i
}

fn fields_with_problems(fields: &[(&str, &str)]) -> Vec<&'static str> {
    match check(&input(fields)) {
        Ok(r) => panic!("accepted {fields:?}: {r:?}"),
        Err(problems) => problems.into_iter().map(|(f, _)| f).collect(),
    }
}

#[test]
fn every_order_type_becomes_exactly_what_was_entered() {
    let market = check(&input(&[])).expect("market");
    assert_eq!(market.symbol, "AAPL");
    assert_eq!(market.qty, Some(d("10")));
    assert_eq!(market.order_class, OrderClass::Simple);

    let notional = check(&input(&[("qty", ""), ("notional", "$1,250.50")])).expect("notional");
    assert_eq!(
        (notional.qty, notional.notional),
        (None, Some(d("1250.50")))
    );

    let limit = check(&input(&[
        ("order_type", "limit"),
        ("limit_price", "187.5"),
        ("extended_hours", "on"),
    ]))
    .expect("limit");
    assert_eq!(limit.limit_price, Some(d("187.5")));
    assert!(limit.extended_hours);

    let stop = check(&input(&[
        ("order_type", "stop"),
        ("stop_price", "180"),
        ("side", "sell"),
        ("time_in_force", "gtc"),
    ]))
    .expect("stop");
    assert_eq!((stop.stop_price, stop.side), (Some(d("180")), Side::Sell));

    let stop_limit = check(&input(&[
        ("order_type", "stop_limit"),
        ("stop_price", "190"),
        ("limit_price", "191.25"),
    ]))
    .expect("stop limit");
    assert_eq!(stop_limit.order_type, OrderType::StopLimit);

    let trailing = check(&input(&[
        ("order_type", "trailing_stop"),
        ("trail_percent", "2.5%"),
        ("side", "sell"),
    ]))
    .expect("trailing percent");
    assert_eq!(trailing.trail_percent, Some(d("2.5")));
    let trailing = check(&input(&[
        ("order_type", "trailing_stop"),
        ("trail_amount", "1.00"),
        ("side", "sell"),
    ]))
    .expect("trailing amount");
    assert_eq!(trailing.trail_price, Some(d("1.00")));

    let bracket = check(&input(&[
        ("order_type", "limit"),
        ("limit_price", "200"),
        ("take_profit", "220"),
        ("stop_loss", "190"),
        ("time_in_force", "gtc"),
    ]))
    .expect("bracket");
    assert_eq!(bracket.order_class, OrderClass::Bracket);
    assert_eq!(bracket.take_profit.map(|t| t.limit_price), Some(d("220")));
    assert_eq!(bracket.stop_loss.map(|s| s.stop_price), Some(d("190")));

    let oto = check(&input(&[("stop_loss", "190")])).expect("oto");
    assert_eq!(oto.order_class, OrderClass::Oto);
    assert!(oto.take_profit.is_none());

    let fraction = check(&input(&[("qty", "0.123456789")])).expect("fraction");
    assert_eq!(fraction.qty, Some(d("0.123456789")));
}

#[test]
fn alpacas_rules_put_each_problem_beside_its_field() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("qty", "")], "qty"),
        (&[("notional", "100")], "notional"),
        (&[("qty", ""), ("notional", "0.5")], "notional"),
        (
            &[
                ("qty", ""),
                ("notional", "100"),
                ("order_type", "limit"),
                ("limit_price", "1"),
            ],
            "notional",
        ),
        (
            &[("qty", ""), ("notional", "100"), ("time_in_force", "gtc")],
            "time_in_force",
        ),
        (
            &[
                ("qty", "0.5"),
                ("order_type", "limit"),
                ("limit_price", "10"),
            ],
            "qty",
        ),
        (&[("qty", "0.0000000001")], "qty"),
        (&[("qty", "-1")], "qty"),
        (&[("order_type", "limit")], "limit_price"),
        (&[("limit_price", "10")], "limit_price"),
        (
            &[("order_type", "limit"), ("limit_price", "290.123")],
            "limit_price",
        ),
        (
            &[("order_type", "limit"), ("limit_price", "0.12345")],
            "limit_price",
        ),
        (&[("order_type", "stop")], "stop_price"),
        (
            &[("order_type", "stop_limit"), ("stop_price", "10")],
            "limit_price",
        ),
        (&[("order_type", "trailing_stop")], "trail_percent"),
        (
            &[
                ("order_type", "trailing_stop"),
                ("trail_percent", "1"),
                ("trail_amount", "1"),
            ],
            "trail_amount",
        ),
        (
            &[("order_type", "trailing_stop"), ("trail_percent", "100")],
            "trail_percent",
        ),
        (
            &[
                ("order_type", "trailing_stop"),
                ("trail_percent", "1"),
                ("time_in_force", "ioc"),
            ],
            "time_in_force",
        ),
        (&[("trail_amount", "1")], "trail_amount"),
        (&[("extended_hours", "on")], "extended_hours"),
        (
            &[
                ("order_type", "limit"),
                ("limit_price", "10"),
                ("time_in_force", "gtc"),
                ("extended_hours", "on"),
            ],
            "extended_hours",
        ),
        (&[("take_profit", "250"), ("stop_loss", "260")], "stop_loss"),
        (
            &[
                ("side", "sell"),
                ("take_profit", "260"),
                ("stop_loss", "250"),
            ],
            "stop_loss",
        ),
        (
            &[
                ("order_type", "limit"),
                ("limit_price", "200"),
                ("take_profit", "199"),
            ],
            "take_profit",
        ),
        (
            &[
                ("order_type", "limit"),
                ("limit_price", "200"),
                ("stop_loss", "200"),
            ],
            "stop_loss",
        ),
        (
            &[
                ("order_type", "limit"),
                ("limit_price", "200"),
                ("side", "sell"),
                ("take_profit", "201"),
            ],
            "take_profit",
        ),
        (
            &[
                ("order_type", "stop"),
                ("stop_price", "200"),
                ("take_profit", "250"),
            ],
            "take_profit",
        ),
        (
            &[("take_profit", "250"), ("time_in_force", "ioc")],
            "time_in_force",
        ),
        (&[("qty", "1.5"), ("stop_loss", "100")], "qty"),
        (&[("symbol", "AAPL; DROP")], "symbol"),
        (&[("symbol", "")], "symbol"),
        (&[("side", "hold")], "side"),
        (&[("order_type", "iceberg")], "order_type"),
        (&[("time_in_force", "opg")], "time_in_force"),
    ];
    for (fields, field) in cases {
        assert!(
            fields_with_problems(fields).contains(field),
            "{fields:?} should be refused at {field}: {:?}",
            check(&input(fields))
        );
    }
}

#[test]
fn the_entry_rule_names_the_price_it_compared_with() {
    let err =
        against_entry(Side::Buy, d("200"), "the last price", Some(d("200")), None).expect_err("tp");
    assert_eq!(err.0, "take_profit");
    assert_eq!(
        err.1,
        "For a buy, the take-profit price must be above the last price ($200.00)."
    );
    assert!(
        against_entry(
            Side::Sell,
            d("200"),
            "x",
            Some(d("199.99")),
            Some(d("200.01"))
        )
        .is_ok()
    );
}
