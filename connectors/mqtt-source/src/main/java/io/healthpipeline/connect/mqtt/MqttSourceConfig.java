package io.healthpipeline.connect.mqtt;

import java.io.IOException;
import java.io.InputStream;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.common.config.AbstractConfig;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.ConfigDef.Importance;
import org.apache.kafka.common.config.ConfigDef.Type;
import org.apache.kafka.common.config.ConfigException;

/** The connector's settings: where to subscribe, as whom, and where the records go. */
public final class MqttSourceConfig extends AbstractConfig {
  public static final String SERVER_URI = "mqtt.server.uri";
  public static final String TOPIC = "mqtt.topic";
  public static final String QOS = "mqtt.qos";
  public static final String CLIENT_ID = "mqtt.client.id";
  public static final String USERNAME = "mqtt.username";
  public static final String PASSWORD = "mqtt.password";
  public static final String CLEAN_SESSION = "mqtt.clean.session";
  public static final String CONNECTION_TIMEOUT = "mqtt.connection.timeout.seconds";
  public static final String KEEPALIVE = "mqtt.keepalive.seconds";
  public static final String KAFKA_TOPIC = "kafka.topic";
  public static final String KEY_FIELD = "record.key.field";
  public static final String MAX_BATCH = "max.batch.size";
  public static final String POLL_TIMEOUT = "poll.timeout.ms";

  private static final ConfigDef.Validator NOT_BLANK = (name, value) -> {
    if (value == null || value.toString().isBlank()) {
      throw new ConfigException(name, value, "must not be empty");
    }
  };

  private static final ConfigDef.Validator BROKER_URI = (name, value) -> {
    String uri = value == null ? "" : value.toString();
    if (!uri.matches("(tcp|ssl)://[^:/\\s]+:\\d+")) {
      throw new ConfigException(name, value, "must be tcp://host:port or ssl://host:port");
    }
  };

  public static final ConfigDef DEFINITION = new ConfigDef()
      .define(SERVER_URI, Type.STRING, ConfigDef.NO_DEFAULT_VALUE, BROKER_URI, Importance.HIGH,
          "The MQTT broker: tcp://host:port or ssl://host:port.")
      .define(TOPIC, Type.STRING, ConfigDef.NO_DEFAULT_VALUE, NOT_BLANK, Importance.HIGH,
          "MQTT topic filter to subscribe to, e.g. health/device_data.")
      .define(QOS, Type.INT, 1, ConfigDef.Range.between(0, 2), Importance.MEDIUM,
          "QoS of the subscription. With 1 or 2 a message is acknowledged to the broker only "
              + "once Kafka has it.")
      .define(CLIENT_ID, Type.STRING, ConfigDef.NO_DEFAULT_VALUE, NOT_BLANK, Importance.HIGH,
          "MQTT client id; unique per broker, and stable so a persistent session survives.")
      .define(USERNAME, Type.STRING, "", Importance.HIGH, "MQTT user name (empty: none).")
      .define(PASSWORD, Type.PASSWORD, "", Importance.HIGH, "MQTT password.")
      .define(CLEAN_SESSION, Type.BOOLEAN, false, Importance.MEDIUM,
          "false keeps the session in the broker while the connector is away, so QoS 1 and 2 "
              + "messages published meanwhile are delivered when it returns.")
      .define(CONNECTION_TIMEOUT, Type.INT, 10, ConfigDef.Range.atLeast(1), Importance.LOW,
          "Seconds to wait for the broker to accept a connection.")
      .define(KEEPALIVE, Type.INT, 30, ConfigDef.Range.atLeast(1), Importance.LOW,
          "MQTT keep-alive interval in seconds.")
      .define(KAFKA_TOPIC, Type.STRING, ConfigDef.NO_DEFAULT_VALUE, NOT_BLANK, Importance.HIGH,
          "Kafka topic the records are written to.")
      .define(KEY_FIELD, Type.STRING, "deviceId", Importance.MEDIUM,
          "Top-level field of the JSON payload whose value (string or number) becomes the "
              + "record key; empty for no key.")
      .define(MAX_BATCH, Type.INT, 1000, ConfigDef.Range.atLeast(1), Importance.LOW,
          "Most records one poll returns.")
      .define(POLL_TIMEOUT, Type.INT, 100, ConfigDef.Range.atLeast(1), Importance.LOW,
          "Milliseconds a poll waits for the first message.");

  public MqttSourceConfig(Map<String, String> props) {
    super(DEFINITION, props);
  }

  /** The version Maven wrote into the jar's resources, or "unknown". */
  static String version() {
    try (InputStream in = MqttSourceConfig.class.getResourceAsStream(
        "/mqtt-source-connector.properties")) {
      Properties properties = new Properties();
      if (in != null) {
        properties.load(in);
      }
      return properties.getProperty("version", "unknown");
    } catch (IOException e) {
      return "unknown";
    }
  }
}
