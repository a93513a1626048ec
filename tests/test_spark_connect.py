"""The Spark Connect path (what Databricks serverless and shared clusters speak), proven
against a real local Spark Connect server started by dbxml on a scratch home."""
from conftest import free_port

from dbxml.catalog import ensure_schema, table_name
from dbxml.config import load_target, with_overrides
from dbxml.spark import connect_server, get_spark


def test_a_delta_table_round_trips_through_a_local_spark_connect_server(tmp_path):
    home = tmp_path / "home"
    with connect_server(with_overrides(load_target("local", environ={}), home=home), port=free_port()) as url:
        target = with_overrides(load_target("connect", environ={}), home=home, spark_remote=url)
        spark = get_spark(target)
        assert type(spark).__module__.startswith("pyspark.sql.connect")  # a Connect client, not classic Spark
        ensure_schema(spark, target)
        name = table_name(target, "connect_numbers").on(target)
        spark.range(10).selectExpr("id", "id * id AS square").write.format("delta").mode("overwrite").saveAsTable(name)
        assert spark.table(name).agg({"square": "sum"}).first()[0] == sum(i * i for i in range(10))
        assert spark.sql(f"DESCRIBE DETAIL {name}").first()["format"] == "delta"
        spark.stop()
    # the server wrote into the target's home, like a classic session would
    assert (home / "warehouse" / "local__flights.db" / "connect_numbers" / "_delta_log").is_dir()
    assert (home / "metastore_db").is_dir()
