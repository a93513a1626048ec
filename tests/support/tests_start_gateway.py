"A module that starts Spark's JVM when imported: the bad behaviour test_imports must catch."
from pyspark import SparkContext
from pyspark.java_gateway import launch_gateway

SparkContext._gateway = launch_gateway()
