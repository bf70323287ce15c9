package io.healthpipeline.connect.mqtt;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.SSLPeerUnverifiedException;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.errors.ConnectException;
import org.apache.kafka.connect.header.ConnectHeaders;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.source.SourceTask;
import org.eclipse.paho.client.mqttv3.IMqttActionListener;
import org.eclipse.paho.client.mqttv3.IMqttDeliveryToken;
import org.eclipse.paho.client.mqttv3.IMqttToken;
import org.eclipse.paho.client.mqttv3.MqttAsyncClient;
import org.eclipse.paho.client.mqttv3.MqttCallbackExtended;
import org.eclipse.paho.client.mqttv3.MqttConnectOptions;
import org.eclipse.paho.client.mqttv3.MqttException;
import org.eclipse.paho.client.mqttv3.MqttMessage;
import org.eclipse.paho.client.mqttv3.persist.MemoryPersistence;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One MQTT session subscribed to every configured topic filter. Messages wait in a bounded
 * queue (a full queue stops paho reading, which pushes back on the broker); each is
 * acknowledged to the broker in {@link #commitRecord} once Kafka has its record, so a crash
 * loses nothing the broker sent. The record's `mqtt.topic` header is the topic it came on.
 *
 * <p>The asynchronous paho client is used because its callbacks run on paho's single callback
 * thread: a blocking call there (a synchronous subscribe after a reconnect) would wait for an
 * acknowledgement only that same thread can process, and no message would arrive again.
 *
 * <p>With a dead-letter topic, a payload that cannot be keyed becomes a record of that topic
 * instead, acknowledged the same way: none is failed on, dropped or lost.
 *
 * <p>With tasks.max above 1 this task is one member of an MQTT share group (see
 * {@link MqttSourceConfig#subscriptions}), its records carrying its client id in the
 * `mqtt.client.id` header and its own source partition.
 *
 * <p>A broker it cannot reach when it starts (refused, timed out) is tried again with a
 * doubling, bounded backoff while the task stays RUNNING; a broker that refuses the login or
 * a certificate the CA did not sign fails the task at once.
 *
 * <p>Once connected, it adopts the sessions an earlier tasks.max left on the broker (see
 * {@link OrphanAdopter}): their messages come through this task's queue and records, carry
 * the orphaned client id in the `mqtt.adopted.client.id` header, and are acknowledged on
 * their own session's client.
 */
public final class MqttSourceTask extends SourceTask {
  private static final Logger LOG = LoggerFactory.getLogger(MqttSourceTask.class);
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final long WARN_INTERVAL_MS = 60_000;
  /** One JSON document and nothing after it: `{...} junk` is not a reading. */
  private static final ObjectReader ONE_DOCUMENT =
      JSON.reader().with(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
  static final String REASON_HEADER = "health.error.reason";
  static final String MESSAGE_HEADER = "health.error.message";
  static final String NOT_JSON = "not-json";
  static final String NO_KEY = "no-key-field";
  static final String ADOPTED_HEADER = "mqtt.adopted.client.id";

  /** Where a payload goes with a dead-letter topic: its key, or why it has none. */
  private record Verdict(String key, String reason, String message) {
    static Verdict keyed(String key) {
      return new Verdict(key, null, null);
    }

    static Verdict dead(String reason, String message) {
      return new Verdict(null, reason, message);
    }
  }

  /**
   * A message as it arrived, with the connection it arrived on (ids are per connection): the
   * task's own, numbered by `connection`, or an adopted session's (`adopted` not null).
   */
  private record Incoming(int id, int qos, String topic, byte[] payload, int connection,
      OrphanAdopter.Adoption adopted) {}

  private final BlockingQueue<Incoming> queue = new LinkedBlockingQueue<>(10_000);
  private final Map<SourceRecord, Incoming> unacknowledged =
      Collections.synchronizedMap(new IdentityHashMap<>());
  private final AtomicInteger connection = new AtomicInteger();
  private final AtomicLong count = new AtomicLong();
  private final AtomicLong unkeyed = new AtomicLong();
  private final AtomicLong deadLettered = new AtomicLong();
  private volatile long lastWarning;
  private volatile boolean stopping;
  private volatile String subscriptionRefused;
  /** Set when a retried connection gets an answer no retry fixes; poll() fails the task. */
  private volatile String fatal;
  private ScheduledExecutorService retries;
  private OrphanAdopter adopter;
  private final AtomicBoolean adopting = new AtomicBoolean();
  private MqttConnectOptions options;
  private String clientId;
  private Map<String, String> sourcePartition;
  private boolean shared;
  private int qos;
  private MqttSourceConfig config;
  private volatile MqttAsyncClient client;
  private String uri;
  private List<String> filters;
  private String kafkaTopic;
  private String keyField;
  private String deadLetterTopic;
  private int maxBatch;
  private int pollTimeoutMs;

  @Override
  public String version() {
    return MqttSourceConfig.version();
  }

  @Override
  public void start(Map<String, String> props) {
    config = new MqttSourceConfig(props);
    uri = config.pahoUri();
    filters = config.subscriptions();
    clientId = config.clientId();
    shared = config.taskCount() > 1;
    // One partition per session: with shared subscriptions each task's offsets stay its own.
    String topicList = String.join(",", config.getList(MqttSourceConfig.TOPICS));
    sourcePartition = shared
        ? Map.of("mqtt.topics", topicList, "mqtt.client.id", clientId)
        : Map.of("mqtt.topics", topicList);
    kafkaTopic = config.getString(MqttSourceConfig.KAFKA_TOPIC);
    keyField = config.getString(MqttSourceConfig.KEY_FIELD);
    deadLetterTopic = config.getString(MqttSourceConfig.DEAD_LETTER_TOPIC).trim();
    maxBatch = config.getInt(MqttSourceConfig.MAX_BATCH);
    pollTimeoutMs = config.getInt(MqttSourceConfig.POLL_TIMEOUT);
    qos = config.getInt(MqttSourceConfig.QOS);

    options = config.connectOptions(config.getBoolean(MqttSourceConfig.CLEAN_SESSION), true);
    adopter = new OrphanAdopter(config, clientId, (from, topic, message) -> enqueue(
        new Incoming(message.getId(), message.getQos(), topic, message.getPayload(), 0, from)));
    try {
      client = new MqttAsyncClient(uri, clientId, new MemoryPersistence());
      client.setManualAcks(true);
      // The callback comes first: a persistent session's queued messages arrive right after
      // the connection is accepted, before subscribe returns.
      client.setCallback(new Callback());
      client.connect(options).waitForCompletion();
    } catch (MqttException e) {
      if (!retryable(e)) {
        closeQuietly();
        throw new ConnectException(describe(e), e);
      }
      retries = Executors.newSingleThreadScheduledExecutor(runnable -> {
        Thread thread = new Thread(runnable, "mqtt-source-connect-" + clientId);
        thread.setDaemon(true);
        return thread;
      });
      scheduleRetry(e, 1, config.getLong(MqttSourceConfig.BACKOFF_INITIAL));
      return;
    }
    connected();
  }

  private void connected() {
    subscribe(client);
    LOG.info("Connected to {} as {}, subscribing to {} (QoS {}), writing to {}", uri, clientId,
        filters, qos, kafkaTopic);
    if (!deadLetterTopic.isEmpty()) {
      LOG.info("Payloads that cannot be keyed go to {}", deadLetterTopic);
    }
    if (adopting.compareAndSet(false, true)) {
      adopter.start(config.getLong(MqttSourceConfig.ORPHANS_DELAY));
    }
  }

  /**
   * Whether another attempt may succeed: not after the broker refused the login, the client id
   * or the protocol (CONNACK 1, 2, 4, 5; 3 is "server unavailable"), nor after TLS found a
   * certificate the CA did not sign or that does not name the broker.
   */
  static boolean retryable(MqttException e) {
    int code = e.getReasonCode();
    if (code >= 1 && code <= 5) {
      return code == MqttException.REASON_CODE_BROKER_UNAVAILABLE;
    }
    for (Throwable cause = e.getCause(); cause != null; cause = cause.getCause()) {
      if (cause instanceof java.security.cert.CertificateException
          || cause instanceof SSLPeerUnverifiedException) {
        return false;
      }
    }
    return true;
  }

  private void scheduleRetry(MqttException failure, int attempt, long delayMs) {
    LOG.warn("{}; task {} stays RUNNING and tries again in {} ms (attempt {})",
        describe(failure), clientId, delayMs, attempt + 1);
    long next = Math.min(delayMs * 2, config.getLong(MqttSourceConfig.BACKOFF_MAX));
    try {
      retries.schedule(() -> retry(attempt + 1, next), delayMs, TimeUnit.MILLISECONDS);
    } catch (java.util.concurrent.RejectedExecutionException stopped) {
      // stop() came first
    }
  }

  private void retry(int attempt, long nextDelayMs) {
    MqttAsyncClient current = client;
    if (current == null || stopping) {
      return;
    }
    try {
      current.connect(options, null, new IMqttActionListener() {
        @Override
        public void onSuccess(IMqttToken token) {
          LOG.info("Reached MQTT broker {} at attempt {}", uri, attempt);
          connected();
        }

        @Override
        public void onFailure(IMqttToken token, Throwable error) {
          onRetryFailure(error, attempt, nextDelayMs);
        }
      });
    } catch (MqttException e) {
      onRetryFailure(e, attempt, nextDelayMs);
    }
  }

  private void onRetryFailure(Throwable error, int attempt, long nextDelayMs) {
    if (stopping) {
      return;
    }
    MqttException e = error instanceof MqttException m ? m : new MqttException(error);
    if (retryable(e)) {
      scheduleRetry(e, attempt, nextDelayMs);
    } else {
      fatal = describe(e);
      LOG.error("{}; the task fails", fatal);
    }
  }

  /**
   * Subscribes to every filter in one SUBSCRIBE, without waiting: a persistent session's
   * backlog arrives before the SUBACK and can fill the queue before poll() runs, and in a
   * callback waiting would block the very thread that completes the subscription. A refusal of
   * any filter fails the task at the next poll.
   */
  private void subscribe(MqttAsyncClient current) {
    String[] topics = filters.toArray(new String[0]);
    int[] qoses = new int[topics.length];
    Arrays.fill(qoses, qos);
    try {
      current.subscribe(topics, qoses, null, new IMqttActionListener() {
        @Override
        public void onSuccess(IMqttToken token) {
          int[] granted = token.getGrantedQos();
          List<String> refused = new ArrayList<>();
          for (int i = 0; i < granted.length && i < topics.length; i++) {
            if (granted[i] == 0x80) {
              refused.add(topics[i]);
            }
          }
          if (!refused.isEmpty()) {
            subscriptionRefused = String.format(
                "MQTT broker %s refused the subscription to %s", uri, String.join(", ", refused));
          }
        }

        @Override
        public void onFailure(IMqttToken token, Throwable error) {
          // A lost connection: paho reconnects and connectComplete subscribes again.
          LOG.warn("Subscribing to {} failed: {}", filters, error.getMessage());
        }
      });
    } catch (MqttException e) {
      LOG.warn("Subscribing to {} failed: {}", filters, describe(e));
    }
  }

  /** One line naming the broker and paho's reason; never a credential. */
  private String describe(MqttException e) {
    int code = e.getReasonCode();
    if (code >= 1 && code <= 5) {
      return String.format("MQTT broker %s refused the connection: %s (%d)", uri,
          e.getMessage(), code);
    }
    Throwable cause = e.getCause() != null ? e.getCause() : e;
    return String.format("cannot reach MQTT broker %s: %s", uri, cause.getMessage());
  }

  private final class Callback implements MqttCallbackExtended {
    @Override
    public void connectComplete(boolean reconnect, String serverUri) {
      if (!reconnect) {
        return;
      }
      LOG.info("Reconnected to {}", serverUri);
      // Needed after a clean session (or a broker that lost its state), harmless otherwise.
      MqttAsyncClient current = client;
      if (current != null) {
        subscribe(current);
      }
    }

    /**
     * From here on no message of the lost connection is acknowledged: its ids mean nothing on
     * the next one (the broker resends what was not acknowledged), and a PUBACK handed to
     * paho while it is disconnected would stop its next connection for good (see {@link
     * #commitRecord}). Counted here, not when the next connection is complete, so that every
     * message the next connection brings carries its number, even one that comes first.
     */
    @Override
    public void connectionLost(Throwable cause) {
      connection.incrementAndGet();
      LOG.warn("Lost the connection to {} ({}); reconnecting", uri, cause.getMessage());
    }

    @Override
    public void messageArrived(String topic, MqttMessage message) throws InterruptedException {
      enqueue(new Incoming(message.getId(), message.getQos(), topic, message.getPayload(),
          connection.get(), null));
    }

    @Override
    public void deliveryComplete(IMqttDeliveryToken token) {
    }
  }

  /**
   * A full queue holds paho (and so the broker) back; on stop the message is left
   * unacknowledged (false), and the broker sends it again to the next session.
   */
  private boolean enqueue(Incoming incoming) throws InterruptedException {
    while (!queue.offer(incoming, 100, TimeUnit.MILLISECONDS)) {
      if (stopping) {
        return false;
      }
    }
    return true;
  }

  @Override
  public List<SourceRecord> poll() throws InterruptedException {
    if (subscriptionRefused != null) {
      throw new ConnectException(subscriptionRefused);
    }
    if (fatal != null) {
      throw new ConnectException(fatal);
    }
    Incoming first = queue.poll(pollTimeoutMs, TimeUnit.MILLISECONDS);
    if (first == null) {
      return null;
    }
    List<Incoming> batch = new ArrayList<>(Math.min(maxBatch, queue.size() + 1));
    batch.add(first);
    queue.drainTo(batch, maxBatch - 1);
    List<SourceRecord> records = new ArrayList<>(batch.size());
    for (Incoming message : batch) {
      SourceRecord record = toRecord(message);
      if (message.qos() > 0) {
        unacknowledged.put(record, message);
      }
      records.add(record);
    }
    return records;
  }

  private SourceRecord toRecord(Incoming message) {
    ConnectHeaders headers = new ConnectHeaders();
    headers.addString("mqtt.topic", message.topic());
    if (shared) {
      headers.addString("mqtt.client.id", clientId);
    }
    if (message.adopted() != null) {
      headers.addString(ADOPTED_HEADER, message.adopted().clientId());
    }
    if (!deadLetterTopic.isEmpty()) {
      return routed(message, headers);
    }
    return new SourceRecord(
        sourcePartition,
        Map.of("count", count.incrementAndGet()),
        kafkaTopic, null,
        Schema.OPTIONAL_STRING_SCHEMA, keyOf(message.payload()),
        Schema.STRING_SCHEMA, new String(message.payload(), StandardCharsets.UTF_8),
        null, headers);
  }

  /**
   * With a dead-letter topic: the payload's bytes as published, to the Kafka topic keyed by
   * its key field, or to the dead-letter topic with the reason in the headers. The source
   * partition and offset are those of every record, so it is acknowledged like any other.
   */
  private SourceRecord routed(Incoming message, ConnectHeaders headers) {
    Verdict verdict = judge(message.payload());
    String topic = kafkaTopic;
    if (verdict.reason() != null) {
      topic = deadLetterTopic;
      headers.addString(REASON_HEADER, verdict.reason());
      headers.addString(MESSAGE_HEADER, verdict.message());
      headers.addInt("mqtt.message.id", message.id());
      headers.addInt("mqtt.qos", message.qos());
      warnDeadLettered(verdict.reason());
    }
    return new SourceRecord(
        sourcePartition,
        Map.of("count", count.incrementAndGet()),
        topic, null,
        Schema.OPTIONAL_STRING_SCHEMA, verdict.key(),
        Schema.BYTES_SCHEMA, message.payload(),
        null, headers);
  }

  /** Keyed, or why not; the reason and message never quote the payload. */
  private Verdict judge(byte[] payload) {
    JsonNode root;
    try {
      root = ONE_DOCUMENT.readTree(payload);
    } catch (IOException | RuntimeException e) {
      return Verdict.dead(NOT_JSON, "the payload is not one JSON document");
    }
    if (root == null || root.isMissingNode()) {
      return Verdict.dead(NOT_JSON, "the payload is empty");
    }
    if (keyField.isEmpty()) {
      return Verdict.keyed(null);
    }
    JsonNode field = root.get(keyField);
    if (field != null && (field.isTextual() || field.isNumber()) && !field.asText().isBlank()) {
      return Verdict.keyed(field.asText());
    }
    return Verdict.dead(NO_KEY, "the JSON has no top-level field " + keyField
        + " holding a non-blank string or a number");
  }

  private void warnDeadLettered(String reason) {
    long total = deadLettered.incrementAndGet();
    long now = System.currentTimeMillis();
    if (now - lastWarning >= WARN_INTERVAL_MS) {
      lastWarning = now;
      LOG.warn("{} message(s) so far could not be keyed and went to {} (the latest: {})", total,
          deadLetterTopic, reason);
    }
  }

  /** The key field's value when the payload is a JSON object that has it, else null. */
  private String keyOf(byte[] payload) {
    if (keyField.isEmpty()) {
      return null;
    }
    try {
      JsonNode field = JSON.readTree(payload).get(keyField);
      if (field != null && (field.isTextual() || field.isNumber())) {
        return field.asText();
      }
    } catch (IOException | RuntimeException e) {
      // not JSON: counted below, the payload itself is never logged
    }
    long total = unkeyed.incrementAndGet();
    long now = System.currentTimeMillis();
    if (now - lastWarning >= WARN_INTERVAL_MS) {
      lastWarning = now;
      LOG.warn("{} message(s) so far had no JSON field {}: written without a key", total,
          keyField);
    }
    return null;
  }

  /**
   * Kafka has the record (or the framework dropped it on purpose): the broker may forget it.
   * Only while connected, and only on the connection the message came on: paho 1.2.5 queues a
   * PUBACK even while it is disconnected, and its next connection then stops before sending
   * CONNECT (its sender thread finds the PUBACK first, ends, and the connecting thread waits
   * for it to run forever, in CommsSender.start), so the task never receives again. A message
   * left unacknowledged here is resent by the broker on the next connection: a duplicate.
   */
  @Override
  public void commitRecord(SourceRecord record, RecordMetadata metadata) {
    Incoming message = unacknowledged.remove(record);
    if (message != null && message.adopted() != null) {
      message.adopted().acknowledge(message.id(), message.qos());
      return;
    }
    MqttAsyncClient current = client;
    if (message == null || current == null || message.connection() != connection.get()
        || !current.isConnected()) {
      return;
    }
    try {
      current.messageArrivedComplete(message.id(), message.qos());
    } catch (MqttException e) {
      // The broker resends it on the next connection: a duplicate, never a loss.
      LOG.warn("Could not acknowledge MQTT message {}: {}", message.id(), describe(e));
    }
  }

  @Override
  public void stop() {
    closeQuietly();
  }

  /** Disconnects within a few seconds whatever state paho is in; never throws. */
  private void closeQuietly() {
    stopping = true;
    if (retries != null) {
      retries.shutdownNow();
    }
    if (adopter != null) {
      adopter.stop();
    }
    MqttAsyncClient current = client;
    client = null;
    queue.clear(); // unblocks a callback waiting for room
    if (current == null) {
      return;
    }
    try {
      if (current.isConnected()) {
        current.disconnect(1_000).waitForCompletion(3_000);
      }
    } catch (MqttException | RuntimeException e) {
      LOG.warn("Disconnecting from {}: {}", uri, e.getMessage());
      try {
        current.disconnectForcibly(0, 1_000);
      } catch (MqttException | RuntimeException ignored) {
        // closing below regardless
      }
    }
    try {
      current.close(true);
    } catch (MqttException | RuntimeException e) {
      LOG.warn("Closing the MQTT client: {}", e.getMessage());
    }
    queue.clear();
    unacknowledged.clear();
  }
}
