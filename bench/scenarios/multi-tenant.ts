/** Multi-tenant: many projects × rooms × members, every member talking (socket-base only). */
import { Traffic } from './traffic.js';
import type { Scenario } from './types.js';

export const multiTenant: Scenario = {
  name: 'multitenant',
  title: 'multi-tenant',
  instances: () => 1,
  appliesTo: (server) => server.socketBase,
  run: (context) =>
    new Traffic(context, {
      projects: context.sizes.tenantProjects,
      roomsPerProject: context.sizes.tenantRooms,
      membersPerRoom: context.sizes.tenantMembers,
      senders: 'all',
      rates: context.sizes.tenantRates,
      refRate: context.sizes.tenantRefRate,
      halfStep: false,
    }).search(),
};
