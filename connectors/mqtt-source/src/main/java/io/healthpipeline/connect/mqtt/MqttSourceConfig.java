package io.healthpipeline.connect.mqtt;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocketFactory;
import javax.net.ssl.TrustManagerFactory;
import org.apache.kafka.common.config.AbstractConfig;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.ConfigDef.Importance;
import org.apache.kafka.common.config.ConfigDef.Type;
import org.apache.kafka.common.config.ConfigException;
import org.eclipse.paho.client.mqttv3.MqttConnectOptions;

/** The connector's settings: where to subscribe, as whom, and where the records go. */
public final class MqttSourceConfig extends AbstractConfig {
  public static final String SERVER_URI = "mqtt.server.uri";
  public static final String TOPICS = "mqtt.topics";
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
  public static final String SSL_CA_PEM = "mqtt.ssl.ca.pem";
  public static final String SHARE_GROUP = "mqtt.share.group";
  public static final String BACKOFF_INITIAL = "mqtt.reconnect.backoff.initial.ms";
  public static final String BACKOFF_MAX = "mqtt.reconnect.backoff.max.ms";
  public static final String ORPHANS_DELAY = "mqtt.orphans.delay.ms";
  public static final String ORPHANS_SCAN = "mqtt.orphans.scan";
  /** Set by the connector in each task's config when tasks.max is above 1, never by a user. */
  static final String TASK_INDEX = "mqtt.task.index";
  static final String TASK_COUNT = "mqtt.task.count";
  static final String SHARE_PREFIX = "$share/";
  /** Named as Kafka Connect names a sink's dead-letter topic; Connect has none for sources. */
  public static final String DEAD_LETTER_TOPIC = "errors.deadletterqueue.topic.name";
  static final String VALUE_CONVERTER = "value.converter";
  static final String BYTE_ARRAY_CONVERTER =
      "org.apache.kafka.connect.converters.ByteArrayConverter";

  private static final ConfigDef.Validator NOT_BLANK = (name, value) -> {
    if (value == null || value.toString().isBlank()) {
      throw new ConfigException(name, value, "must not be empty");
    }
  };

  /** One or more topic filters, none blank, none twice. */
  private static final ConfigDef.Validator TOPIC_LIST = (name, value) -> {
    List<?> topics = value instanceof List<?> list ? list : List.of();
    if (topics.isEmpty()) {
      throw new ConfigException(name, value, "must name at least one MQTT topic filter");
    }
    if (topics.stream().anyMatch(topic -> topic == null || topic.toString().isBlank())) {
      throw new ConfigException(name, value, "must not hold an empty topic filter");
    }
    if (new HashSet<>(topics).size() != topics.size()) {
      throw new ConfigException(name, value, "must not name a topic filter twice");
    }
  };

  /** Plain and TLS schemes, as every part of health-pipeline spells them. */
  private static final String SCHEMES = "(tcp|mqtt|ssl|mqtts)";

  private static final ConfigDef.Validator BROKER_URI = (name, value) -> {
    String uri = value == null ? "" : value.toString();
    if (!uri.matches(SCHEMES + "://[^:/\\s]+:\\d+")) {
      throw new ConfigException(name, value, "must be tcp:// or mqtt:// (plain), or ssl:// or "
          + "mqtts:// (TLS), followed by host:port");
    }
  };

  /** An MQTT share name: one topic level, no wildcard (MQTT 5.0, 4.8.2); empty: derived. */
  private static final ConfigDef.Validator SHARE_NAME = (name, value) -> {
    String group = value == null ? "" : value.toString();
    if (group.contains("/") || group.contains("+") || group.contains("#")) {
      throw new ConfigException(name, value, "must not contain '/', '+' or '#' (an MQTT share "
          + "name is one topic level)");
    }
  };

  public static final ConfigDef DEFINITION = new ConfigDef()
      .define(SERVER_URI, Type.STRING, ConfigDef.NO_DEFAULT_VALUE, BROKER_URI, Importance.HIGH,
          "The MQTT broker: tcp://host:port or ssl://host:port.")
      .define(TOPICS, Type.LIST, ConfigDef.NO_DEFAULT_VALUE, TOPIC_LIST, Importance.HIGH,
          "MQTT topic filters to subscribe to, comma-separated, e.g. "
              + "health/device_data,health/health_data; all on one session, with mqtt.qos.")
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
          "Milliseconds a poll waits for the first message.")
      .define(SSL_CA_PEM, Type.STRING, "", Importance.HIGH,
          "TLS only: the PEM certificates of the CA(s) the broker's certificate must chain to; "
              + "empty trusts the JVM's default CAs. The broker's host name is always checked "
              + "against its certificate.")
      .define(DEAD_LETTER_TOPIC, Type.STRING, "", Importance.MEDIUM,
          "Kafka topic for a payload that cannot be keyed (not one JSON document, or no "
              + "usable " + KEY_FIELD + "): written there byte for byte, the reason in the "
              + "headers health.error.reason and health.error.message, beside mqtt.topic, "
              + "mqtt.message.id and mqtt.qos, and acknowledged to the broker once Kafka has "
              + "it, as every record is. Every record's value is then the payload's bytes, so "
              + "it needs " + VALUE_CONVERTER + "=" + BYTE_ARRAY_CONVERTER + ". Empty: such "
              + "a payload goes to " + KAFKA_TOPIC + " without a key, as UTF-8 text.")
      .define(SHARE_GROUP, Type.STRING, "", SHARE_NAME, Importance.MEDIUM,
          "With tasks.max above 1: the MQTT share group the tasks join, each subscribing to "
              + "$share/<group>/<filter> for every filter of " + TOPICS + " with the client id "
              + "<" + CLIENT_ID + ">-<task index>, so that the broker gives each message to one "
              + "task. Empty: " + CLIENT_ID + " itself. Unused with one task, which subscribes to "
              + "the filters themselves as " + CLIENT_ID + ".")
      .define(BACKOFF_INITIAL, Type.LONG, 1_000L, ConfigDef.Range.atLeast(1), Importance.LOW,
          "Milliseconds before the task tries again to reach a broker it could not reach when "
              + "it started (refused or timed out connection); doubled after each failure up to "
              + BACKOFF_MAX + ". The task stays RUNNING meanwhile and logs each attempt. A "
              + "broker that refuses the login, or a certificate the CA did not sign, fails the "
              + "task at once: no retry fixes those.")
      .define(BACKOFF_MAX, Type.LONG, 60_000L, ConfigDef.Range.atLeast(1), Importance.LOW,
          "The longest wait between two attempts to reach the broker, at start and after a "
              + "lost connection (paho's automatic reconnect, which starts at 1 s and doubles).")
      .define(ORPHANS_DELAY, Type.LONG, 5_000L, ConfigDef.Range.atLeast(0), Importance.LOW,
          "Milliseconds after a task has connected before it looks for orphaned sessions "
              + "(see " + ORPHANS_SCAN + "), so that Connect has stopped the tasks of the "
              + "previous tasks.max by then.")
      .define(ORPHANS_SCAN, Type.INT, 32, ConfigDef.Range.atLeast(0), Importance.LOW,
          "How many task client ids <" + CLIENT_ID + ">-<i> (i from 0) the tasks check for "
              + "sessions that an earlier tasks.max left on the broker and no task owns now: "
              + "those of i from tasks.max up (all of them with one task), and "
              + CLIENT_ID + " itself with several. Mosquitto keeps queueing for such a session "
              + "(a share group's absent member still gets its turn). A task adopts each one "
              + "it finds: reads its queued messages into Kafka like its own, acknowledging "
              + "each once Kafka has it, then removes the session. Those ids must belong to "
              + "nothing else. 0: no check.")
      .define(TASK_INDEX, Type.INT, 0, ConfigDef.Range.atLeast(0), Importance.LOW,
          "Set by the connector for each task when tasks.max is above 1; never set it.")
      .define(TASK_COUNT, Type.INT, 1, ConfigDef.Range.atLeast(1), Importance.LOW,
          "Set by the connector for each task when tasks.max is above 1; never set it.");

  private final SSLSocketFactory socketFactory;

  public MqttSourceConfig(Map<String, String> props) {
    super(DEFINITION, props);
    String pem = getString(SSL_CA_PEM);
    if (!pem.isBlank() && !tls()) {
      throw new ConfigException(SSL_CA_PEM, "(a CA)", "is only used with an ssl:// or "
          + "mqtts:// " + SERVER_URI);
    }
    socketFactory = pem.isBlank() ? null : trusting(pem);
    String problem = deadLetterProblem(props);
    if (problem != null) {
      throw new ConfigException(DEAD_LETTER_TOPIC, getString(DEAD_LETTER_TOPIC), problem);
    }
    if (getLong(BACKOFF_MAX) < getLong(BACKOFF_INITIAL)) {
      throw new ConfigException(BACKOFF_MAX, getLong(BACKOFF_MAX), "must be at least "
          + BACKOFF_INITIAL + " (" + getLong(BACKOFF_INITIAL) + ")");
    }
  }

  /**
   * What is wrong with sharing the subscriptions among `tasks` tasks, or null: the connector
   * adds the $share prefix itself, and the derived group name must be a valid share name.
   */
  static String sharingProblem(Map<String, String> props, int tasks) {
    if (tasks <= 1) {
      return null;
    }
    for (String filter : props.getOrDefault(TOPICS, "").split(",")) {
      if (filter.trim().startsWith(SHARE_PREFIX)) {
        return TOPICS + " must name the filters themselves (" + filter.trim() + " is already "
            + "shared): with tasks.max " + tasks + " each task subscribes to "
            + SHARE_PREFIX + "<" + SHARE_GROUP + ">/<filter>";
      }
    }
    String group = props.getOrDefault(SHARE_GROUP, "").trim();
    String derived = group.isEmpty() ? props.getOrDefault(CLIENT_ID, "").trim() : group;
    if (derived.contains("/") || derived.contains("+") || derived.contains("#")) {
      return "the share group is " + CLIENT_ID + " (" + derived + "), which contains '/', '+' "
          + "or '#'; set " + SHARE_GROUP + " to one topic level";
    }
    return null;
  }

  /** How many tasks share the subscriptions (1: this task subscribes alone, as always). */
  public int taskCount() {
    return getInt(TASK_COUNT);
  }

  /** This task's MQTT client id: the configured one, suffixed by the task index if shared. */
  public String clientId() {
    String base = getString(CLIENT_ID);
    return taskCount() > 1 ? base + "-" + getInt(TASK_INDEX) : base;
  }

  /** The filters this task subscribes to: as configured, or in the share group if shared. */
  public List<String> subscriptions() {
    List<String> filters = getList(TOPICS);
    if (taskCount() <= 1) {
      return List.copyOf(filters);
    }
    String name = shareGroup();
    return filters.stream().map(filter -> SHARE_PREFIX + name + "/" + filter).toList();
  }

  /** The configured filters and their shared forms: whatever an earlier task subscribed to. */
  public List<String> everySubscription() {
    List<String> every = new ArrayList<>();
    for (String filter : getList(TOPICS)) {
      every.add(filter);
      if (!filter.startsWith(SHARE_PREFIX)) {
        every.add(SHARE_PREFIX + shareGroup() + "/" + filter);
      }
    }
    return every;
  }

  private String shareGroup() {
    String group = getString(SHARE_GROUP).trim();
    return group.isEmpty() ? getString(CLIENT_ID).trim() : group;
  }

  /**
   * The client ids of possibly orphaned sessions this task checks: of the ids no task of this
   * tasks.max owns ({@code <id>-i} for i in [tasks, scan), or [0, scan) with one task, then
   * {@code <id>} itself with several), those at positions index, index + tasks, ...: each id
   * is checked by exactly one task.
   */
  public List<String> orphanCandidates() {
    String base = getString(CLIENT_ID);
    int tasks = taskCount();
    int scan = getInt(ORPHANS_SCAN);
    List<String> unowned = new ArrayList<>();
    for (int i = tasks > 1 ? tasks : 0; i < scan; i++) {
      unowned.add(base + "-" + i);
    }
    if (tasks > 1 && scan > 0) {
      unowned.add(base);
    }
    List<String> mine = new ArrayList<>();
    for (int k = getInt(TASK_INDEX); k < unowned.size(); k += tasks) {
      mine.add(unowned.get(k));
    }
    return mine;
  }

  /**
   * How every connection of a task is made: TLS, login, timeouts; `cleanSession` and
   * paho's automatic reconnect as asked.
   */
  public MqttConnectOptions connectOptions(boolean cleanSession, boolean automaticReconnect) {
    MqttConnectOptions options = new MqttConnectOptions();
    options.setCleanSession(cleanSession);
    options.setAutomaticReconnect(automaticReconnect);
    options.setMaxReconnectDelay((int) Math.min(Integer.MAX_VALUE, getLong(BACKOFF_MAX)));
    options.setConnectionTimeout(getInt(CONNECTION_TIMEOUT));
    options.setKeepAliveInterval(getInt(KEEPALIVE));
    if (tls()) {
      options.setHttpsHostnameVerificationEnabled(true);
      if (socketFactory != null) {
        options.setSocketFactory(socketFactory);
      }
    }
    String username = getString(USERNAME);
    if (!username.isEmpty()) {
      options.setUserName(username);
      options.setPassword(getPassword(PASSWORD).value().toCharArray());
    }
    return options;
  }

  /**
   * What is wrong with the dead-letter settings of a connector config, or null: the topic must
   * not be the records' own, and the records' bytes need ByteArrayConverter (a payload that is
   * not text would reach the topic as Java's "[B@..." through StringConverter).
   */
  static String deadLetterProblem(Map<String, String> props) {
    String topic = props.getOrDefault(DEAD_LETTER_TOPIC, "").trim();
    if (topic.isEmpty()) {
      return null;
    }
    if (topic.equals(props.getOrDefault(KAFKA_TOPIC, "").trim())) {
      return "must differ from " + KAFKA_TOPIC + ", where the payloads that can be keyed go";
    }
    String converter = props.getOrDefault(VALUE_CONVERTER, "").trim();
    if (!converter.equals(BYTE_ARRAY_CONVERTER) && !converter.equals("ByteArrayConverter")) {
      return "needs " + VALUE_CONVERTER + "=" + BYTE_ARRAY_CONVERTER + " (it is '" + converter
          + "'): with a dead-letter topic every record carries the payload's bytes as "
          + "published";
    }
    return null;
  }

  /** Whether the broker is reached over TLS. */
  public boolean tls() {
    return getString(SERVER_URI).matches("(ssl|mqtts)://.*");
  }

  /** The broker URI as paho takes it (tcp:// or ssl://). */
  public String pahoUri() {
    return getString(SERVER_URI).replaceFirst("^mqtts://", "ssl://")
        .replaceFirst("^mqtt://", "tcp://");
  }

  /** TLS trusting only the configured CA, or null for the JVM's defaults. */
  public SSLSocketFactory socketFactory() {
    return socketFactory;
  }

  private static SSLSocketFactory trusting(String pem) {
    try {
      Collection<? extends Certificate> certificates = CertificateFactory.getInstance("X.509")
          .generateCertificates(new ByteArrayInputStream(pem.getBytes(StandardCharsets.US_ASCII)));
      if (certificates.isEmpty()) {
        throw new ConfigException(SSL_CA_PEM, "(no certificate)",
            "must hold PEM certificates (-----BEGIN CERTIFICATE-----)");
      }
      KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
      store.load(null, null);
      int index = 0;
      for (Certificate certificate : certificates) {
        store.setCertificateEntry("ca-" + index++, certificate);
      }
      TrustManagerFactory trust = TrustManagerFactory.getInstance(
          TrustManagerFactory.getDefaultAlgorithm());
      trust.init(store);
      SSLContext context = SSLContext.getInstance("TLS");
      context.init(null, trust.getTrustManagers(), null);
      return new MinimumTls12SocketFactory(context.getSocketFactory());
    } catch (GeneralSecurityException | IOException e) {
      throw new ConfigException(SSL_CA_PEM, "(unreadable)", "is not a PEM certificate bundle: "
          + e.getMessage());
    }
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
