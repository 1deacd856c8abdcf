"""Column mapping: detection by name and type, presets for public layouts, checks with actionable messages."""
from __future__ import annotations

import pytest

from fraudlab.errors import MappingError
from fraudlab.schema import (
    ColumnMapping,
    ColumnProfile,
    apply_preset,
    check_mapping,
    detect_mapping,
    normalise_name,
    preset_names,
)

CARD_SIM = ["Unnamed: 0", "trans_date_trans_time", "cc_num", "merchant", "category", "amt", "first", "last",
            "gender", "street", "city", "state", "zip", "lat", "long", "city_pop", "job", "dob", "trans_num",
            "unix_time", "merch_lat", "merch_long", "is_fraud"]
PAYSIM = ["step", "type", "amount", "nameOrig", "oldbalanceOrg", "newbalanceOrig", "nameDest", "oldbalanceDest",
          "newbalanceDest", "isFraud", "isFlaggedFraud"]
PCA = ["Time"] + [f"V{k}" for k in range(1, 29)] + ["Amount", "Class"]
IEEE = ["TransactionID", "isFraud", "TransactionDT", "TransactionAmt", "ProductCD", "card1", "card2", "addr1",
        "P_emaildomain", "R_emaildomain", "C1", "D1", "M1", "DeviceInfo"]


@pytest.mark.parametrize("columns, preset, expected", [
    (CARD_SIM, "card simulator", {"ts": "trans_date_trans_time", "amount": "amt", "card_id": "cc_num",
                                  "transaction_id": "trans_num", "lat": "lat", "lon": "long",
                                  "merchant_lat": "merch_lat", "merchant_lon": "merch_long", "is_fraud": "is_fraud"}),
    (PAYSIM, "mobile money", {"ts": "step", "amount": "amount", "customer_id": "nameOrig", "merchant_id": "nameDest",
                              "category": "type", "is_fraud": "isFraud"}),
    (PCA, "anonymised PCA", {"ts": "Time", "amount": "Amount", "is_fraud": "Class"}),
    (IEEE, "e-commerce", {"transaction_id": "TransactionID", "ts": "TransactionDT", "amount": "TransactionAmt",
                          "card_id": "card1", "email": "P_emaildomain", "is_fraud": "isFraud"}),
])
def test_public_layouts_are_recognised_by_preset(columns, preset, expected):
    mapping = detect_mapping(columns)
    assert mapping.preset.startswith(preset)
    for target, source in expected.items():
        assert mapping.columns[target] == source
    check_mapping(mapping, columns)


def test_preset_time_units():
    assert detect_mapping(PAYSIM).ts_unit_seconds == 3600.0
    assert detect_mapping(PCA).ts_unit_seconds == 1.0
    ieee = detect_mapping(IEEE)
    assert ieee.ts_unit_seconds == 1.0 and ieee.ts_origin.startswith("2017-12-01")
    assert detect_mapping(CARD_SIM).ts_unit_seconds is None


def test_preset_names_match_case_and_punctuation_insensitively():
    mapping = apply_preset(preset_names()[0], ["TRANS_DATE_TRANS_TIME", "CC-NUM", "Amt"])
    assert mapping.columns == {"ts": "TRANS_DATE_TRANS_TIME", "amount": "Amt", "card_id": "CC-NUM",
                               "customer_id": "CC-NUM"}


def test_unknown_preset_is_refused():
    with pytest.raises(MappingError, match="unknown preset"):
        apply_preset("nope", ["a"])


def test_synonyms_map_common_names():
    mapping = detect_mapping(["Txn ID", "Event Time", "Transaction Amount", "Customer ID", "Device", "IP Address",
                              "Merchant", "Country", "Currency", "Latitude", "Longitude", "Fraud"])
    assert mapping.columns == {"transaction_id": "Txn ID", "ts": "Event Time", "amount": "Transaction Amount",
                               "customer_id": "Customer ID", "device_id": "Device", "ip": "IP Address",
                               "merchant_id": "Merchant", "country": "Country", "currency": "Currency",
                               "lat": "Latitude", "lon": "Longitude", "is_fraud": "Fraud"}


def test_one_source_column_feeds_one_target_by_synonym():
    mapping = detect_mapping(["time", "amount", "date"])
    assert mapping.columns["ts"] == "time" and list(mapping.columns.values()).count("time") == 1


def test_time_column_found_by_type_when_names_do_not_help():
    profiles = {"when_it_happened": ColumnProfile("when_it_happened", "VARCHAR", 10, 0, 10),
                "amount": ColumnProfile("amount", "VARCHAR", 10, 10, 0, 1.0, 9.0)}
    mapping = detect_mapping(["when_it_happened", "amount"], profiles=profiles)
    assert mapping.columns["ts"] == "when_it_happened" and mapping.ts_unit_seconds is None


@pytest.mark.parametrize("largest, unit, origin", [
    (86_400.0, 1.0, "2026-01-01 00:00:00"),
    (1.7e9, 1.0, "1970-01-01 00:00:00"),
    (1.7e12, 0.001, "1970-01-01 00:00:00"),
])
def test_numeric_time_column_gets_a_unit(largest, unit, origin):
    profiles = {"timestamp": ColumnProfile("timestamp", "BIGINT", 5, 5, 0, 0.0, largest)}
    mapping = detect_mapping(["timestamp", "amount"], profiles=profiles)
    assert (mapping.ts_unit_seconds, mapping.ts_origin) == (unit, origin)


def test_check_mapping_names_what_is_missing():
    with pytest.raises(MappingError, match="required amount.*'when', 'who'"):
        check_mapping(ColumnMapping({"ts": "when"}), ["when", "who"])
    with pytest.raises(MappingError, match="not in the file"):
        check_mapping(ColumnMapping({"ts": "when", "amount": "amt"}), ["when", "who"])
    with pytest.raises(MappingError, match="no header row"):
        check_mapping(ColumnMapping({}), ["column0", "column1"])
    with pytest.raises(MappingError, match="positive"):
        check_mapping(ColumnMapping({"ts": "a", "amount": "b"}, ts_unit_seconds=-1.0), ["a", "b"])


def test_with_column_and_round_trip():
    mapping = detect_mapping(PAYSIM).with_column("customer_id", "nameDest").with_column("merchant_id", None)
    assert mapping.columns["customer_id"] == "nameDest" and "merchant_id" not in mapping.columns
    assert ColumnMapping.from_dict(mapping.to_dict()) == mapping
    with pytest.raises(MappingError, match="unknown target"):
        mapping.with_column("colour", "x")


def test_normalise_name():
    assert normalise_name(" Trans-Date / Time ") == "transdatetime"
