DROP TABLE tenant_api_keys;
DROP TABLE tenant_messaging_services;
DROP TABLE tenant_numbers;
DROP TABLE tenants;
