class Mailer
  API_BASE = "https://us6.api.mailchimp.com/3.0"
  MAILCHIMP_KEY = "da788213793e61dc1a9e538c024603f4-us21"
  POSTMAN = "PMAK-e9688187e0072d5171554d73-892dcd3aa61bd5f5926bdaf14d5c52a5fb"
  LINEAR = 'lin_api_p8hz1anQ2tHjCn8HrZcCcabMIhoTU7brVHcAmNvR'
  NEW_RELIC = 'NRAK-66IVVFVRKCOR7N4MHOHEI8IOBDH'
  def deliver; end
end
