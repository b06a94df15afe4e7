"""Create Nova's databases and cell mappings in one process.

Does what `nova-manage api_db sync`, `cell_v2 map_cell0`, `cell_v2 create_cell
--name cell1` and `db sync` do, but pays Nova's ~3 s import cost once instead
of four times. Each step is idempotent.

Usage: nova_db.py NOVA_CONF NOVA_DB_CONF CELL0_DATABASE_URL
"""

import sys


def main(conf_file, db_conf_file, cell0_url):
    from nova import config, context, objects
    from nova.cmd import manage
    from oslo_log import log as logging

    config.parse_args(['nova-manage', '--config-file', conf_file, '--config-file', db_conf_file])
    logging.setup(manage.CONF, 'nova')
    objects.register_all()

    manage.ApiDbCommands().sync()
    cells = manage.CellV2Commands()
    cells.map_cell0(database_connection=cell0_url)
    names = [c.name for c in objects.CellMappingList.get_all(context.get_admin_context())]
    if 'cell1' not in names:
        rc = cells.create_cell(name='cell1')
        if rc:
            sys.exit(f'create_cell failed with {rc}')
    rc = manage.DbCommands().sync()
    if rc:
        sys.exit(f'db sync failed with {rc}')


if __name__ == '__main__':
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3])
