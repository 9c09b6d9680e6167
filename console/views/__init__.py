"""The console's own pages, one module per audience: home (everyone), audit (compliance), saved views (every list
page's user), health (load balancers and orchestrators)."""
