"""Create Neutron's schema from its models.

neutron 29.0.0's alembic migrations only run on MySQL, so the devcloud builds
the tables straight from the models and then runs `neutron-db-manage stamp
heads` (see lib/nova.sh).

Usage: neutron_schema.py DATABASE_URL
"""

import sys


def main(url):
    import sqlalchemy
    from neutron.db.migration.models import head

    engine = sqlalchemy.create_engine(url)
    head.get_metadata().create_all(engine)
    engine.dispose()


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
