/** The project's local images (scripts/build-images.sh), used by every integration test. */
export const IMAGES = {
  postgres: 'stackvault-local/postgres:17',
  /** PostgreSQL 13.16 (Debian bullseye): its psql predates the \restrict meta-command (13.22). */
  postgres13: 'stackvault-local/postgres:13',
  /** Debian trixie's mariadb-server 11.8, set up as the official mariadb image (compose/images/mariadb). */
  mariadb: 'stackvault-local/mariadb:11',
  /** MariaDB 10.5.23 (Debian bullseye), the same image: its client predates the sandbox command (10.5.25). */
  mariadb105: 'stackvault-local/mariadb:10.5',
  redis: 'stackvault-local/redis:7',
  /** Redis 6.0 (Debian bullseye): its AOF is one appendonly.aof file, not a directory. */
  redis6: 'stackvault-local/redis:6',
  /** Redis 8.0 (Debian trixie). */
  redis8: 'stackvault-local/redis:8',
  chroma: 'stackvault-local/chroma:1',
  neo4j: 'stackvault-local/neo4j:5-standin',
  app: 'stackvault-local/app:1',
  /** postgres:17 plus PostgreSQL's built regression suite (compose/images/pg-regress). */
  pgRegress: 'stackvault-local/pg-regress:17',
  // Used by the real-stack layouts in test/layouts/ (local-images.env).
  pgvector: 'stackvault-local/pgvector:17',
  valkey: 'stackvault-local/valkey:8',
  appstub: 'stackvault-local/appstub:1',
  /** A real ClickHouse 18.16 (Debian bookworm), a store with no driver (compose/images/clickhouse). */
  clickhouse: 'stackvault-local/clickhouse:18',
  /** An SFTP server for restic's sftp backend (compose/images/sshd). */
  sshd: 'stackvault-local/sshd:1',
} as const;
