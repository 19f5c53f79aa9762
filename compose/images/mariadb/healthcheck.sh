#!/bin/sh
# Answers once the real server (not the init one, which listens on no socket of its own) is up.
exec mariadb-admin --no-defaults --protocol=socket --socket=/run/mysqld/mysqld.sock -uroot ping >/dev/null 2>&1
