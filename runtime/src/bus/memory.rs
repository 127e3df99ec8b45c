//! An in-process broker: topics are lists of messages, consumer groups keep an offset per
//! topic. For tests and demos without a broker; it loses everything when the process exits.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

use super::{BusError, DeadLetter, Delivery, Message, Publisher, Source};

/// An in-process broker. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct MemoryBroker {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    state: Mutex<State>,
    published: Notify,
    down: AtomicBool,
    refused: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    topics: HashMap<String, Vec<Message>>,
    dead_letters: Vec<(Message, DeadLetter)>,
    /// (group, topic) → the index of the next message to deliver.
    offsets: HashMap<(String, String), usize>,
}

impl MemoryBroker {
    /// An empty broker.
    pub fn new() -> Self {
        MemoryBroker::default()
    }

    /// A publisher into this broker.
    pub fn publisher(&self) -> MemoryPublisher {
        MemoryPublisher {
            broker: self.clone(),
        }
    }

    /// A consumer of `topics` in consumer group `group`: it resumes after the last message
    /// the group acknowledged on each topic.
    pub fn subscribe(&self, group: &str, topics: &[&str]) -> MemorySource {
        MemorySource {
            broker: self.clone(),
            group: group.to_owned(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            delivered: HashMap::new(),
        }
    }

    /// Makes publishing fail (`true`) or work again (`false`), as a broker outage would.
    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down, Ordering::SeqCst);
    }

    /// How many publish calls failed because the broker was down.
    pub fn refused(&self) -> u64 {
        self.inner.refused.load(Ordering::SeqCst)
    }

    /// The messages of a topic, in order.
    pub fn messages(&self, topic: &str) -> Vec<Message> {
        self.lock().topics.get(topic).cloned().unwrap_or_default()
    }

    /// The dead letters, in order.
    pub fn dead_letters(&self) -> Vec<(Message, DeadLetter)> {
        self.lock().dead_letters.clone()
    }

    /// Adds a message to its topic, as a producer that is not a relay would.
    pub fn push(&self, message: Message) {
        let mut state = self.lock();
        state
            .topics
            .entry(message.topic.clone())
            .or_default()
            .push(message);
        drop(state);
        self.inner.published.notify_waiters();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Publishes into a [`MemoryBroker`].
#[derive(Debug, Clone)]
pub struct MemoryPublisher {
    broker: MemoryBroker,
}

impl Publisher for MemoryPublisher {
    async fn publish(&mut self, messages: &[Message]) -> Result<(), BusError> {
        if self.broker.inner.down.load(Ordering::SeqCst) {
            self.broker.inner.refused.fetch_add(1, Ordering::SeqCst);
            return Err(BusError::broker("the memory broker is down"));
        }
        for message in messages {
            self.broker.push(message.clone());
        }
        Ok(())
    }
}

/// Consumes from a [`MemoryBroker`] in a consumer group.
#[derive(Debug)]
pub struct MemorySource {
    broker: MemoryBroker,
    group: String,
    topics: Vec<String>,
    /// Per topic, the next index this consumer delivers (ahead of the group's offset until
    /// acknowledged).
    delivered: HashMap<String, usize>,
}

/// Acknowledges one message of a [`MemorySource`].
#[derive(Debug)]
pub struct MemoryReceipt {
    topic: String,
    index: usize,
    message: Message,
}

impl MemorySource {
    /// The next undelivered message of the first topic that has one.
    fn ready(&mut self) -> Option<(Message, MemoryReceipt)> {
        let state = self.broker.lock();
        for topic in &self.topics {
            let committed = state
                .offsets
                .get(&(self.group.clone(), topic.clone()))
                .copied()
                .unwrap_or(0);
            let next = self
                .delivered
                .get(topic)
                .copied()
                .unwrap_or(0)
                .max(committed);
            if let Some(message) = state.topics.get(topic).and_then(|m| m.get(next)) {
                self.delivered.insert(topic.clone(), next + 1);
                let receipt = MemoryReceipt {
                    topic: topic.clone(),
                    index: next,
                    message: message.clone(),
                };
                return Some((message.clone(), receipt));
            }
        }
        None
    }
}

impl Source for MemorySource {
    type Receipt = MemoryReceipt;

    async fn next(&mut self) -> Result<Delivery<MemoryReceipt>, BusError> {
        let broker = self.broker.clone();
        loop {
            let published = broker.inner.published.notified();
            if let Some((message, receipt)) = self.ready() {
                return Ok((Ok(message), receipt));
            }
            published.await;
        }
    }

    async fn try_next(&mut self) -> Result<Option<Delivery<MemoryReceipt>>, BusError> {
        Ok(self
            .ready()
            .map(|(message, receipt)| (Ok(message), receipt)))
    }

    async fn ack(&mut self, receipt: MemoryReceipt) -> Result<(), BusError> {
        let mut state = self.broker.lock();
        let offset = state
            .offsets
            .entry((self.group.clone(), receipt.topic))
            .or_default();
        *offset = (*offset).max(receipt.index + 1);
        Ok(())
    }

    async fn dead_letter(
        &mut self,
        receipt: &MemoryReceipt,
        letter: &DeadLetter,
    ) -> Result<(), BusError> {
        let mut state = self.broker.lock();
        state
            .dead_letters
            .push((receipt.message.clone(), letter.clone()));
        Ok(())
    }
}
