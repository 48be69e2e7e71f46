//! Pooled connections that keep their prepared statements.
//!
//! A typed query (`query_typed`) reaches the server in one round trip but
//! as an unnamed statement: the server parses and plans it again on every
//! call. The hot paths (claims, completions, task reads) run the same few
//! statements thousands of times a second, and planning `TASK_COLUMNS`
//! with its subqueries costs more than running it, so each pooled
//! connection prepares a statement the first time it runs it and binds it
//! afterwards (still one round trip; the server keeps a generic plan after
//! a few calls). A statement lives as long as its connection: a connection
//! the pool drops or replaces takes its statements with it.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};

use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls, Row, Statement, Transaction};
use r2d2_postgres::PostgresConnectionManager;

/// Statements one connection keeps at most; past it the cache starts over,
/// so SQL built from varying input cannot grow it without bound.
const MAX_STATEMENTS: usize = 256;

/// A typed statement's parameters: each value with its type.
pub(crate) type TypedParams<'p> = [(&'p (dyn ToSql + Sync), Type)];

/// The prepared statements of one connection, by SQL text and parameter types.
#[derive(Default)]
pub(crate) struct Statements {
    prepared: HashMap<(String, Vec<Type>), Statement>,
}

impl Statements {
    /// The statement for `sql` with `params`' types, prepared on `tx` the
    /// first time.
    fn get(
        &mut self,
        tx: &mut Transaction<'_>,
        sql: &str,
        params: &TypedParams<'_>,
    ) -> Result<Statement, postgres::Error> {
        let types: Vec<Type> = params.iter().map(|(_, ty)| ty.clone()).collect();
        let key = (sql.to_owned(), types);
        if let Some(statement) = self.prepared.get(&key) {
            return Ok(statement.clone());
        }
        let statement = tx.prepare_typed(sql, &key.1)?;
        if self.prepared.len() >= MAX_STATEMENTS {
            self.prepared.clear();
        }
        self.prepared.insert(key, statement.clone());
        Ok(statement)
    }
}

/// A pooled connection: the client and the statements it prepared.
pub(crate) struct Conn {
    client: Client,
    statements: Statements,
}

impl Conn {
    /// Starts a transaction with `begin` (a plain one, or a builder's) that
    /// can use this connection's prepared statements.
    pub(crate) fn transaction_with<'a>(
        &'a mut self,
        begin: impl FnOnce(&'a mut Client) -> Result<Transaction<'a>, postgres::Error>,
    ) -> Result<Tx<'a>, postgres::Error> {
        Ok(Tx {
            inner: begin(&mut self.client)?,
            statements: &mut self.statements,
        })
    }

    /// A plain read-committed transaction.
    pub(crate) fn transaction(&mut self) -> Result<Tx<'_>, postgres::Error> {
        self.transaction_with(|client| client.transaction())
    }
}

impl Deref for Conn {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// The pool's manager: `r2d2_postgres`'s, with a statement cache per connection.
pub(crate) struct Manager(pub(crate) PostgresConnectionManager<NoTls>);

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Conn, postgres::Error> {
        Ok(Conn {
            client: self.0.connect()?,
            statements: Statements::default(),
        })
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), postgres::Error> {
        self.0.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        self.0.has_broken(&mut conn.client)
    }
}

/// A transaction on a pooled connection. It is a `postgres::Transaction`
/// (through `Deref`) with typed queries that reuse prepared statements.
pub(crate) struct Tx<'a> {
    inner: Transaction<'a>,
    statements: &'a mut Statements,
}

impl<'a> Tx<'a> {
    /// `query_typed` through the connection's prepared statement.
    pub(crate) fn query_cached(
        &mut self,
        sql: &str,
        params: &TypedParams<'_>,
    ) -> Result<Vec<Row>, postgres::Error> {
        let statement = self.statements.get(&mut self.inner, sql, params)?;
        let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|(v, _)| *v).collect();
        self.inner.query(&statement, &values)
    }

    /// `execute_typed` through the connection's prepared statement.
    pub(crate) fn execute_cached(
        &mut self,
        sql: &str,
        params: &TypedParams<'_>,
    ) -> Result<u64, postgres::Error> {
        let statement = self.statements.get(&mut self.inner, sql, params)?;
        let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|(v, _)| *v).collect();
        self.inner.execute(&statement, &values)
    }

    /// `query_typed_opt` through the connection's prepared statement.
    pub(crate) fn query_cached_opt(
        &mut self,
        sql: &str,
        params: &TypedParams<'_>,
    ) -> Result<Option<Row>, postgres::Error> {
        let statement = self.statements.get(&mut self.inner, sql, params)?;
        let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|(v, _)| *v).collect();
        self.inner.query_opt(&statement, &values)
    }

    /// `query_typed_one` through the connection's prepared statement.
    pub(crate) fn query_cached_one(
        &mut self,
        sql: &str,
        params: &TypedParams<'_>,
    ) -> Result<Row, postgres::Error> {
        let statement = self.statements.get(&mut self.inner, sql, params)?;
        let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|(v, _)| *v).collect();
        self.inner.query_one(&statement, &values)
    }

    pub(crate) fn commit(self) -> Result<(), postgres::Error> {
        self.inner.commit()
    }
}

impl<'a> Deref for Tx<'a> {
    type Target = Transaction<'a>;

    fn deref(&self) -> &Transaction<'a> {
        &self.inner
    }
}

impl<'a> DerefMut for Tx<'a> {
    fn deref_mut(&mut self) -> &mut Transaction<'a> {
        &mut self.inner
    }
}
