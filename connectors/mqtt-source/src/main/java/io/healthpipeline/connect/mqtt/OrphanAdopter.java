package io.healthpipeline.connect.mqtt;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.eclipse.paho.client.mqttv3.IMqttDeliveryToken;
import org.eclipse.paho.client.mqttv3.IMqttToken;
import org.eclipse.paho.client.mqttv3.MqttAsyncClient;
import org.eclipse.paho.client.mqttv3.MqttCallback;
import org.eclipse.paho.client.mqttv3.MqttException;
import org.eclipse.paho.client.mqttv3.MqttMessage;
import org.eclipse.paho.client.mqttv3.persist.MemoryPersistence;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads the persistent sessions an earlier tasks.max left on the broker into Kafka, then
 * removes them. Mosquitto keeps queueing for such a session, for nobody: a share group's
 * absent member still gets its turn, and the single task's old session, subscribed to the
 * filters themselves, gets a copy of everything.
 *
 * <p>On a thread of its own, once, {@link MqttSourceConfig#ORPHANS_DELAY} after the task
 * connected, it connects as each of the task's {@link MqttSourceConfig#orphanCandidates} with a
 * persistent session. No session there: it removes the empty one that connect made. A session
 * there: it unsubscribes every form of the filters at once, so that the broker routes nothing
 * more to it (Mosquitto still sends what it had queued, tests/contract/test_mosquitto.py),
 * hands each message to the task, which builds and acknowledges it as one of its own (on this
 * session's client, once Kafka has the record), and when every message is acknowledged and
 * nothing has come for {@link #QUIET_MS}, disconnects and removes the session. A session it
 * cannot read to the end (lost connection, no progress, the task stopping) is left on the
 * broker with what it still holds, for the next start of a task.
 */
final class OrphanAdopter {
  private static final Logger LOG = LoggerFactory.getLogger(OrphanAdopter.class);
  /** Every message acknowledged and none since for this long: the session holds no more. */
  static final long QUIET_MS = 5_000;
  /**
   * Messages not yet acknowledged and no progress for this long: give up on the session
   * (Connect's producer itself gives up on a record after delivery.timeout.ms, 2 minutes).
   */
  static final long STALL_MS = 120_000;
  /** How long a disconnect lets paho finish what it is doing (its default is 30 s). */
  private static final long QUIESCE_MS = 1_000;

  /** Where an adopted session's messages go: the task's queue, where its own go. */
  interface Sink {
    /** Queues one message; false when the task stopped first (it is never acknowledged). */
    boolean accept(Adoption from, String topic, MqttMessage message) throws InterruptedException;
  }

  private enum Outcome { ABSENT, ADOPTED, LEFT, UNREACHABLE, STOPPED }

  private final MqttSourceConfig config;
  private final String owner;
  private final List<String> candidates;
  private final Sink sink;
  private final long waitMs;
  private final ScheduledExecutorService executor;
  private volatile boolean stopping;
  private volatile Adoption current;

  OrphanAdopter(MqttSourceConfig config, String owner, Sink sink) {
    this.config = config;
    this.owner = owner;
    this.candidates = config.orphanCandidates();
    this.sink = sink;
    this.waitMs = config.getInt(MqttSourceConfig.CONNECTION_TIMEOUT) * 1_000L + 5_000L;
    this.executor = Executors.newSingleThreadScheduledExecutor(runnable -> {
      Thread thread = new Thread(runnable, "mqtt-source-orphans-" + owner);
      thread.setDaemon(true);
      return thread;
    });
  }

  /** Looks for orphaned sessions once, after `delayMs`; never blocks. */
  void start(long delayMs) {
    if (candidates.isEmpty()) {
      executor.shutdown();
      return;
    }
    try {
      executor.schedule(this::run, delayMs, TimeUnit.MILLISECONDS);
    } catch (RejectedExecutionException stopped) {
      // stop() came first
    }
  }

  /** Stops at once, leaving the session being read (if any) on the broker as it is. */
  void stop() {
    stopping = true;
    executor.shutdownNow();
    Adoption adoption = current;
    if (adoption != null) {
      adoption.close();
    }
  }

  private void run() {
    int checked = 0;
    int adopted = 0;
    List<String> left = new ArrayList<>();
    try {
      for (String id : candidates) {
        if (stopping) {
          break;
        }
        Outcome outcome = check(id);
        if (outcome == Outcome.STOPPED || outcome == Outcome.UNREACHABLE) {
          break;
        }
        checked++;
        if (outcome == Outcome.ADOPTED) {
          adopted++;
        } else if (outcome == Outcome.LEFT) {
          left.add(id);
        }
      }
    } catch (RuntimeException e) {
      LOG.error("Looking for orphaned MQTT sessions as {} failed", owner, e);
      return;
    }
    if (checked < candidates.size()) {
      LOG.info("Stopped looking for orphaned MQTT sessions as {} after {} of {} client id(s)",
          owner, checked, candidates.size());
    } else {
      LOG.info("Checked {} client id(s) for orphaned MQTT sessions as {}: {} adopted{}", checked,
          owner, adopted, left.isEmpty() ? "" : ", left on the broker: " + left);
    }
  }

  private Outcome check(String id) {
    MqttAsyncClient client;
    try {
      client = new MqttAsyncClient(config.pahoUri(), id, new MemoryPersistence());
    } catch (MqttException e) {
      LOG.warn("Cannot check the MQTT client id {} for an orphaned session: {}", id, describe(e));
      return Outcome.LEFT;
    }
    Adoption adoption = new Adoption(id, client, sink);
    client.setManualAcks(true);
    // Before connecting: a present session's queued messages follow the CONNACK at once.
    client.setCallback(adoption);
    current = adoption;
    try {
      if (stopping) {
        return Outcome.STOPPED;
      }
      IMqttToken connected;
      try {
        connected = client.connect(config.connectOptions(false, false));
        connected.waitForCompletion(waitMs);
      } catch (MqttException e) {
        if (stopping) {
          return Outcome.STOPPED;
        }
        LOG.warn("Cannot connect as {} to look for an orphaned MQTT session: {}; task {} looks "
            + "no further until it next starts", id, describe(e), owner);
        return Outcome.UNREACHABLE;
      }
      if (!connected.getSessionPresent()) {
        // The broker has just made an empty session for this id: remove it.
        client.disconnect(QUIESCE_MS).waitForCompletion(waitMs);
        removeSession(client);
        return Outcome.ABSENT;
      }
      client.unsubscribe(config.everySubscription().toArray(new String[0]))
          .waitForCompletion(waitMs);
      String problem = drain(adoption);
      if (problem == null) {
        long arrived = adoption.arrived();
        client.disconnect(QUIESCE_MS).waitForCompletion(waitMs);
        if (adoption.outstanding() > 0 || adoption.arrived() != arrived) {
          problem = "a message arrived while disconnecting";
        }
      }
      if (problem != null) {
        if (stopping) {
          LOG.warn("Left the orphaned MQTT session {} on the broker: the task stopped with {} "
              + "of its message(s) read, {} not acknowledged", id, adoption.arrived(),
              adoption.outstanding());
          return Outcome.STOPPED;
        }
        LOG.warn("Left the orphaned MQTT session {} on the broker ({}): {} message(s) read, {} "
            + "not acknowledged; a task tries again when it next starts", id, problem,
            adoption.arrived(), adoption.outstanding());
        return Outcome.LEFT;
      }
      removeSession(client);
      LOG.info("Adopted the orphaned MQTT session {}: it held {} message(s), each acknowledged "
          + "once Kafka had it; the session is removed", id, adoption.arrived());
      return Outcome.ADOPTED;
    } catch (MqttException e) {
      if (stopping) {
        return Outcome.STOPPED;
      }
      LOG.warn("Left the MQTT session {} on the broker as it is: {}; {} message(s) read, {} not "
          + "acknowledged", id, describe(e), adoption.arrived(), adoption.outstanding());
      return Outcome.LEFT;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return Outcome.STOPPED;
    } finally {
      current = null;
      adoption.close();
    }
  }

  /** Null once the session has sent all it held and all of it is acknowledged; else why not. */
  private String drain(Adoption adoption) throws InterruptedException {
    while (true) {
      if (stopping) {
        return "the task is stopping";
      }
      Throwable lost = adoption.lost;
      if (lost != null) {
        return "lost the connection: " + lost.getMessage();
      }
      long idle = System.currentTimeMillis() - adoption.lastEvent;
      if (adoption.outstanding() == 0) {
        if (idle >= QUIET_MS) {
          return null;
        }
      } else if (idle >= STALL_MS) {
        return "nothing acknowledged for " + STALL_MS / 1_000 + " s";
      }
      Thread.sleep(100);
    }
  }

  /**
   * One connect with clean session true, on a disconnected client: the broker drops the
   * session then, and again when it ends (MQTT 3.1.1, 3.1.2.4).
   */
  private void removeSession(MqttAsyncClient client) throws MqttException {
    client.connect(config.connectOptions(true, false)).waitForCompletion(waitMs);
    client.disconnect(QUIESCE_MS).waitForCompletion(waitMs);
  }

  private static String describe(MqttException e) {
    Throwable cause = e.getCause() != null ? e.getCause() : e;
    return cause.getMessage() + " (" + e.getReasonCode() + ")";
  }

  /**
   * One orphaned session being read, on a client of its own and never reconnected: its message
   * ids mean something on this connection only, so each is acknowledged here.
   */
  static final class Adoption implements MqttCallback {
    private final String clientId;
    private final MqttAsyncClient client;
    private final Sink sink;
    private final AtomicLong arrived = new AtomicLong();
    private final AtomicInteger outstanding = new AtomicInteger();
    /** The last arrival or acknowledgement (or the start). */
    private volatile long lastEvent = System.currentTimeMillis();
    private volatile Throwable lost;
    private boolean closed;

    Adoption(String clientId, MqttAsyncClient client, Sink sink) {
      this.clientId = clientId;
      this.client = client;
      this.sink = sink;
    }

    /** The orphaned session's client id. */
    String clientId() {
      return clientId;
    }

    long arrived() {
      return arrived.get();
    }

    int outstanding() {
      return outstanding.get();
    }

    @Override
    public void messageArrived(String topic, MqttMessage message) throws InterruptedException {
      // Counted before it is queued: a full queue must not look like a drained session.
      arrived.incrementAndGet();
      if (message.getQos() > 0) {
        outstanding.incrementAndGet();
      }
      lastEvent = System.currentTimeMillis();
      sink.accept(this, topic, message);
    }

    /** Kafka has the record: the broker may forget the message. */
    void acknowledge(int id, int qos) {
      synchronized (this) {
        if (closed) {
          return; // the session keeps it: sent again to whoever resumes it
        }
        try {
          client.messageArrivedComplete(id, qos);
        } catch (MqttException | RuntimeException e) {
          LOG.warn("Could not acknowledge MQTT message {} of the orphaned session {}: {}", id,
              clientId, e.getMessage());
          return;
        }
      }
      outstanding.decrementAndGet();
      lastEvent = System.currentTimeMillis();
    }

    @Override
    public void connectionLost(Throwable cause) {
      lost = cause;
    }

    @Override
    public void deliveryComplete(IMqttDeliveryToken token) {
    }

    /** Disconnects (the session stays on the broker) and closes; never throws. */
    synchronized void close() {
      if (closed) {
        return;
      }
      closed = true;
      try {
        if (client.isConnected()) {
          client.disconnectForcibly(0, 1_000);
        }
      } catch (MqttException | RuntimeException e) {
        // closing below regardless
      }
      try {
        client.close(true);
      } catch (MqttException | RuntimeException e) {
        LOG.debug("Closing the MQTT client of {}: {}", clientId, e.getMessage());
      }
    }
  }
}
